"""File-system operations on any Hadoop path (local, file://, s3a://) through the JVM.

The job never touches files with Python's own I/O, so the same code serves a laptop
folder and an S3 prefix.
"""

from pyspark.sql import SparkSession


class HadoopFS:
    def __init__(self, spark: SparkSession, uri: str):
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self.root = jvm.org.apache.hadoop.fs.Path(uri)
        self.fs = self.root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def path(self, relative: str = ""):
        return self._jvm.org.apache.hadoop.fs.Path(self.root, relative) if relative else self.root

    def exists(self, relative: str = "") -> bool:
        return self.fs.exists(self.path(relative))

    def is_dir(self, relative: str = "") -> bool:
        return self.fs.getFileStatus(self.path(relative)).isDirectory()

    def glob_matches(self) -> int:
        """How many paths the root (which may hold wildcards) matches."""
        statuses = self.fs.globStatus(self.root)
        return 0 if statuses is None else len(statuses)

    def children(self, relative: str = "") -> list[str]:
        return [status.getPath().getName() for status in self.fs.listStatus(self.path(relative))]

    def delete(self, relative: str = "") -> None:
        self.fs.delete(self.path(relative), True)

    def write_text(self, relative: str, text: str) -> None:
        """Write a small file so that readers never see it half-written (temp file, then rename)."""
        target = self.path(relative)
        temp = self.path(f"_{relative}.tmp")
        stream = self.fs.create(temp, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        self.fs.delete(target, False)
        if not self.fs.rename(temp, target):
            raise OSError(f"could not rename {temp} to {target}")
