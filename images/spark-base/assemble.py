"""Lay out the build context of the stand-in Spark base image (images/spark-base/Dockerfile).

The official apache/spark image unpacks Spark's binary distribution into /opt/spark. The
pyspark wheel is that distribution for the same release (its jars/, bin/ and sbin/), so the
stand-in takes them from the pyspark installed here, and builds python/lib/pyspark.zip and
py4j's zip as the distribution ships them. The official entrypoint.sh is copied from the
upstream recipe given (never into the repository); /opt/decom.sh, the executors' preStop hook
for decommissioning, is our own (images/spark-base/decom.sh): the wheel does not carry Spark's.

    python images/spark-base/assemble.py CONTEXT_DIR UPSTREAM_RECIPE_DIR
"""

import os
import shutil
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import py4j
import pyspark


def zip_package(package: Path, target: Path, leave_out: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package.parent)
            if (
                path.is_dir()
                or "__pycache__" in relative.parts
                or (relative.parts[1:2] and relative.parts[1] in leave_out)
            ):
                continue
            archive.write(path, relative.as_posix())


def assemble(context: Path, recipe: Path) -> None:
    entrypoint = recipe / "entrypoint.sh"
    if not entrypoint.is_file():
        raise SystemExit(
            f"{entrypoint} is missing: give the folder of the official apache/spark image recipe "
            "(SPARK_IMAGE_RECIPE=...), e.g. ../shared/upstream/apache-spark-image."
        )
    shutil.rmtree(context, ignore_errors=True)
    spark = context / "spark"
    wheel = Path(pyspark.__file__).parent
    version = metadata.version("pyspark")
    for folder in ("jars", "bin", "sbin"):
        shutil.copytree(wheel / folder, spark / folder, symlinks=True)
    for script in (spark / "bin").iterdir():
        if script.suffix == ".cmd":
            script.unlink()  # Windows launchers
    (spark / "python" / "lib").mkdir(parents=True)
    zip_package(wheel, spark / "python" / "lib" / "pyspark.zip", leave_out=("jars", "bin", "sbin", "examples"))
    zip_package(Path(py4j.__file__).parent, spark / "python" / "lib" / f"py4j-{metadata.version('py4j')}-src.zip")
    (spark / "RELEASE").write_text(f"Spark {version} (the binary distribution inside the pyspark {version} wheel)\n")
    shutil.copy(entrypoint, context / "entrypoint.sh")
    shutil.copy(Path(__file__).with_name("decom.sh"), context / "decom.sh")  # ours: the wheel has none
    for script in ("entrypoint.sh", "decom.sh"):
        os.chmod(context / script, 0o755)
    print(f"Spark {version} base context in {context}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    assemble(Path(sys.argv[1]), Path(sys.argv[2]))
