"""Lay out the build context of the stand-in Spark base image (images/spark-base/Dockerfile).

The official apache/spark image unpacks Spark's binary distribution into /opt/spark. The
pyspark wheel is that distribution for the same release (its jars/, bin/ and sbin/), so the
stand-in takes them from the pyspark installed here, and builds python/lib/pyspark.zip and
py4j's zip as the distribution ships them. The official entrypoint.sh is copied from the
upstream recipe given (never into the repository); /opt/decom.sh, the executors' preStop hook
for decommissioning, is our own (images/spark-base/decom.sh): the wheel does not carry Spark's.
One jar is cut down: rocksdbjni (59 MB) carries RocksDB's native library for 13 platforms, of
which a Debian image runs one; it keeps glibc Linux on x86-64 and arm64 (9.5 MB).

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


# jar name prefix -> the native libraries it keeps (every other .so/.jnilib/.dll is left out)
NATIVES_KEPT = {"rocksdbjni-": ("librocksdbjni-linux64.so", "librocksdbjni-linux-aarch64.so")}
NATIVE_SUFFIXES = (".so", ".jnilib", ".dll", ".dylib")


def keep_natives(jar: Path, kept: tuple[str, ...]) -> None:
    """Rewrite `jar` without the native libraries not in `kept`: its other entries, in order,
    with their timestamps (the same input gives the same jar)."""
    partial = jar.with_name(jar.name + ".part")
    with zipfile.ZipFile(jar) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if entry.filename.endswith(NATIVE_SUFFIXES) and entry.filename not in kept:
                continue
            copied = zipfile.ZipInfo(entry.filename, entry.date_time)
            copied.compress_type, copied.external_attr = entry.compress_type, entry.external_attr
            target.writestr(copied, source.read(entry))
        missing = set(kept) - set(source.namelist())
    if missing:
        raise SystemExit(f"{jar.name} has no {', '.join(sorted(missing))}: update NATIVES_KEPT in {__file__}")
    partial.replace(jar)


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
    for jar in sorted((spark / "jars").glob("*.jar")):
        for prefix, kept in NATIVES_KEPT.items():
            if jar.name.startswith(prefix):
                keep_natives(jar, kept)
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
