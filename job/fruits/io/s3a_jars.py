"""The S3A connector jars for local runs and tests: fetch once, verify, hand to Spark.

They come from PyPI, so an install that reaches only the Python package index gets them: the
sdist of sagemaker-pyspark 1.4.5 carries hadoop-aws 3.3.1 and aws-java-sdk-bundle 1.11.901,
which work with pyspark 3.5's Hadoop 3.3 client. The image bakes the same pair (images/Dockerfile).

    python -m fruits.io.s3a_jars          # fetch into ~/.cache/fruits/jars (or $FRUITS_JARS_DIR)
"""

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SOURCE_SDIST = "sagemaker-pyspark==1.4.5"
SOURCE_SDIST_SHA256 = "05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb"
JARS = {  # file name -> SHA-256
    "hadoop-aws-3.3.1.jar": "6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e",
    "aws-java-sdk-bundle-1.11.901.jar": "b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead",
}


def jars_dir() -> Path:
    return Path(os.environ.get("FRUITS_JARS_DIR", Path.home() / ".cache" / "fruits" / "jars"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_jars(folder: Path | None = None) -> list[Path] | None:
    """The jar paths if all are present with the expected checksums, else None."""
    folder = folder or jars_dir()
    paths = [folder / name for name in JARS]
    if all(p.is_file() for p in paths) and all(sha256(p) == JARS[p.name] for p in paths):
        return paths
    return None


def fetch_jars(folder: Path | None = None) -> list[Path]:
    folder = folder or jars_dir()
    if found := verified_jars(folder):
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                SOURCE_SDIST,
                "-d",
                scratch,
            ],
            check=True,
        )
        sdist = next(Path(scratch).glob("*.tar.gz"))
        if sha256(sdist) != SOURCE_SDIST_SHA256:
            raise SystemExit(f"{sdist.name} has an unexpected SHA-256; refusing to use its jars.")
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if name in JARS:
                    source = archive.extractfile(member)
                    assert source is not None  # the jars in the sdist are regular files
                    (folder / f"{name}.part").write_bytes(source.read())
                    (folder / f"{name}.part").rename(folder / name)
    found = verified_jars(folder)
    if not found:
        raise SystemExit(f"The jars in {folder} do not match their pinned SHA-256 checksums.")
    return found


def hadoop_version(spark_jars: Path) -> str | None:
    """The Hadoop client version Spark ships (its hadoop-client-api jar)."""
    found = sorted(spark_jars.glob("hadoop-client-api-*.jar"))
    return found[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar") if found else None


if __name__ == "__main__":
    for jar in fetch_jars():
        print(jar)
    if len(sys.argv) == 3 and sys.argv[1] == "--spark-jars":  # the image's build says what it bakes
        print(
            f"S3A connector: {' + '.join(sorted(JARS))}, the verified pair from {SOURCE_SDIST} (PyPI; Maven "
            f"Central is not reachable from our builds); Spark's Hadoop client: "
            f"{hadoop_version(Path(sys.argv[2])) or 'not found'}"
        )
