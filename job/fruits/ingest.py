"""Ingest: list image files under any Spark path and label each by its folder."""

from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits.decode import IMAGE_EXTENSIONS
from fruits.errors import UserError
from fruits.s3a import is_s3
from fruits.storage import HadoopFS

# Hadoop glob: image extensions in any letter case, e.g. *.{[jJ][pP][gG],...}.
IMAGE_GLOB = "*.{" + ",".join("".join(f"[{c.lower()}{c.upper()}]" for c in ext[1:]) for ext in IMAGE_EXTENSIONS) + "}"

# A grandparent folder with one of these names is the split (Fruits-360: Training/, Test/).
SPLIT_NAMES = ("train", "training", "test", "testing", "val", "valid", "validation")


def check_input(spark: SparkSession, uri: str) -> None:
    """Fail early, with the fix, when the input path does not exist."""
    if not HadoopFS(spark, uri).glob_matches():
        if is_s3(uri):
            raise UserError(f"Input {uri!r} matches no S3 objects: check the bucket and prefix in --input.")
        raise UserError(f"Input path {uri!r} does not exist: check --input.")


def read_images(spark: SparkSession, uri: str) -> DataFrame:
    """(path, content) for every .jpg/.jpeg/.png under `uri`, recursively."""
    check_input(spark, uri)
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", IMAGE_GLOB)
        .load(uri)
        .select("path", "content")
    )


def scan_conf(partitions: int) -> dict[str, str]:
    """Spark settings that make the file scan itself pack the images into about `partitions`
    tasks (next-fit by bytes). Spark's default packs ~30 small files per task, which would
    need a shuffle of every image's bytes to get back to one task per core."""
    return {
        "spark.sql.files.minPartitionNum": str(partitions),
        "spark.sql.files.maxPartitionBytes": str(1 << 60),  # let minPartitionNum decide
    }


def listed_files(images: DataFrame) -> list[str]:
    """The driver's listing behind `images` (zero-byte files included), in one JVM call:
    iterating the Java array from Python costs a round trip per file."""
    jvm = images.sparkSession.sparkContext._jvm
    joined = jvm.org.apache.hadoop.util.StringUtils.join("\0", images._jdf.inputFiles())
    return joined.split("\0") if joined else []


def _path_part(path: Column, from_end: int) -> Column:
    parts = F.split(path, "/")
    return F.when(F.size(parts) >= from_end, F.element_at(parts, -from_end))


def with_labels(images: DataFrame) -> DataFrame:
    """Add `label` (parent folder name, as is) and `split` (grandparent, if a known split name)."""
    grandparent = _path_part(F.col("path"), 3)
    return images.withColumn("label", _path_part(F.col("path"), 2)).withColumn(
        "split", F.when(F.lower(grandparent).isin(*SPLIT_NAMES), grandparent)
    )


def _as_scan_path(uri: str) -> str:
    """inputFiles() spelling (file:///a%20b) -> the binaryFile `path` spelling (file:/a b)."""
    path = unquote(uri)
    return "file:/" + path[len("file:///"):] if path.startswith("file:///") else path


def unread_files(spark: SparkSession, listed: list[str], read: DataFrame) -> DataFrame:
    """Listed files that the scan returned no row for, labelled like the others.

    Spark's file scan silently drops zero-byte files; the job reports them as error rows.
    """
    listed_frame = spark.createDataFrame([(_as_scan_path(uri),) for uri in listed], "path string")
    return with_labels(listed_frame.join(read.select("path"), "path", "left_anti"))
