"""The job: ingest -> featurize -> reduce -> write, with the manifest written last."""

import dataclasses
import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
import platform
import time
import uuid
from importlib import metadata

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits import __version__
from fruits.backbones import BACKBONES
from fruits.config import JobConfig
from fruits.errors import UserError, worker_errors_as_user_errors
from fruits.featurize import featurize
from fruits.decode import EMPTY_FILE
from fruits.ingest import IMAGE_GLOB, read_images, unread_files, with_labels
from fruits.output import ERRORS, FEATURES, MODEL, RunOutput
from fruits.progress import StageClock
from fruits.reduce import apply_reduction, fit_reduction
from fruits.s3a import configure_s3a, is_s3, storage_errors_as_user_errors

ROWS_PER_FILE = 20_000  # ~100 MB Parquet files of 1280-d float vectors
IMAGES_PER_TASK = 2_000  # ~20 s of CNN work: per-task overhead (~0.25 s) stays near 1%


def choose_partitions(images: int, cores: int) -> int:
    """Featurize tasks: a multiple of the cores (no half-empty last wave), at most
    IMAGES_PER_TASK images each. Spark's own split of many small files gives one task
    per ~30 images, and each task pays scheduling plus a model warm-up."""
    waves = max(1, -(-images // (cores * IMAGES_PER_TASK)))
    return min(images, cores * waves)


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _versions(spark: SparkSession) -> dict[str, str]:
    found = {"fruits": __version__, "python": platform.python_version(), "spark": spark.version}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "pillow", "pyarrow", "pandas"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def _tally(featurized: DataFrame) -> tuple[int, dict[str, int], dict[str, int]]:
    """(failed rows, usable images per label, per split) in one pass over the cached rows."""
    failed, labels, splits = 0, Counter(), Counter()
    for row in featurized.groupBy("label", "split", F.col("error").isNull().alias("ok")).count().collect():
        if not row["ok"]:
            failed += row["count"]
            continue
        labels[row["label"]] += row["count"]
        if row["split"] is not None:
            splits[row["split"]] += row["count"]
    return failed, dict(sorted(labels.items())), dict(sorted(splits.items()))


def run_job(spark: SparkSession, config: JobConfig, clock: StageClock | None = None,
            run_id: str | None = None) -> dict:
    """Run the whole job for `config`; returns the manifest it wrote."""
    if not config.input or not config.output:
        raise UserError("The job needs both --input and --output.")
    clock = clock or StageClock()
    run_id = run_id or config.run_id or new_run_id()
    if "{run_id}" in config.output:  # scheduled runs: one output per run
        config = dataclasses.replace(config, output=config.output.replace("{run_id}", run_id))
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.batch_size))
    if is_s3(config.input) or is_s3(config.output):
        configure_s3a(spark, config)

    with clock.stage("ingest"):
        with storage_errors_as_user_errors(config.input, config, doing="list the input"):
            images = read_images(spark, config.input)
            listed = images.inputFiles()  # the driver's listing; zero-byte files included
        if not listed:
            raise UserError(
                f"No image files ({IMAGE_GLOB}) under {config.input!r}: put images in "
                "<label>/<file>.jpg folders there, or point --input elsewhere."
            )
        with storage_errors_as_user_errors(config.output, config, doing="prepare the output"):
            output = RunOutput(spark, config.output)
            output.claim(run_id, config.overwrite)
        partitions = config.partitions or choose_partitions(len(listed), spark.sparkContext.defaultParallelism)
        labelled = with_labels(images).repartition(partitions)

    try:
        with clock.stage("featurize"), worker_errors_as_user_errors(), \
                storage_errors_as_user_errors(config.input, config):
            featurized = featurize(labelled, config).persist(StorageLevel.MEMORY_AND_DISK)
            scanned = featurized.count()
    except UserError:
        output.abandon()  # e.g. no weights: nothing was written, leave no folder behind
        raise
    try:
        with storage_errors_as_user_errors(config.output, config):
            results = _reduce_and_write(spark, config, clock, output, featurized, listed, scanned)
    finally:
        featurized.unpersist()

    wall = time.perf_counter() - started
    cores = spark.sparkContext.defaultParallelism
    manifest = {
        "format": "fruits-run/1",
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "input": config.input,
        "output": output.uri,
        **results,
        "timings_s": {**clock.timings, "total": round(wall, 3)},
        "cost": {"executor_cores": cores, "core_seconds": round(cores * wall, 1),
                 "core_seconds_per_1000_images": round(cores * wall * 1000 / len(listed), 1)},
        "files": {"features": FEATURES, "errors": ERRORS, "model": MODEL},
        "config": config.to_dict(),
        "versions": _versions(spark),
    }
    with storage_errors_as_user_errors(config.output, config):
        output.complete(manifest)
    return manifest


def _reduce_and_write(spark: SparkSession, config: JobConfig, clock: StageClock, output: RunOutput,
                      featurized: DataFrame, listed: list[str], scanned: int) -> dict:
    """Error rows, scaler + PCA, and the result files; returns the manifest's result fields."""
    backbone = BACKBONES[config.model]
    good = featurized.where(F.col("error").isNull()).drop("error")
    bad = featurized.where(F.col("error").isNotNull()).select("path", "label", "split", "error")
    if scanned < len(listed):
        empty = unread_files(spark, listed, featurized).withColumn("error", F.lit(EMPTY_FILE))
        bad = bad.unionByName(empty)
    read_count = len(listed)
    failed_rows, labels, splits = _tally(featurized)
    failed_count = failed_rows + read_count - scanned
    ok_count = read_count - failed_count
    with clock.stage("write"):
        bad.coalesce(1).write.mode("overwrite").parquet(output.child(ERRORS))
    if ok_count < 2:
        raise UserError(
            f"Only {ok_count} of {read_count} images could be decoded (PCA needs at least 2); "
            f"the reasons are in {output.child(ERRORS)}."
        )

    with clock.stage("reduce"):
        reduction = fit_reduction(good, k=config.k, variance=config.variance,
                                  fit_fraction=config.fit_fraction, seed=config.seed)

    with clock.stage("write"), ThreadPoolExecutor(max_workers=1) as background:
        # The model save is a handful of tiny Spark jobs: run them beside the big write.
        model_saved = background.submit(lambda: reduction.model.write().overwrite().save(output.child(MODEL)))
        files = max(1, -(-ok_count // ROWS_PER_FILE))
        reduced = apply_reduction(reduction.model, good)
        reduced.coalesce(files).write.mode("overwrite").parquet(output.child(FEATURES))
        model_saved.result()

    return {
        "counts": {"read": read_count, "ok": ok_count, "failed": failed_count},
        "labels": labels,
        "splits": splits,
        "model": {"name": backbone.name, "weights": config.weights, "image_size": config.image_size,
                  "feature_dim": backbone.feature_dim},
        "pca": {"k": reduction.k, "variance_target": None if config.k else config.variance,
                "variance_kept": reduction.variance_kept, "fit_rows": reduction.fit_rows,
                "explained_variance": reduction.explained_variance},
    }
