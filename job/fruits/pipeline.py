"""The job: ingest -> featurize -> reduce -> write, with the manifest written last."""

import dataclasses
import datetime as dt
import platform
import time
import uuid
from importlib import metadata

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from fruits import __version__
from fruits.backbones import BACKBONES
from fruits.config import JobConfig
from fruits.errors import UserError, worker_errors_as_user_errors
from fruits.featurize import featurize
from fruits.decode import EMPTY_FILE
from fruits.ingest import IMAGE_GLOB, listed_files, read_images, scan_conf, unread_files, with_labels
from fruits.output import ERROR_SCHEMA, ERRORS, FEATURES, MODEL, STAGED, RunOutput, part_file
from fruits.parquet_store import ParquetStore
from fruits.progress import StageClock
from fruits.model_files import save_pipeline_model
from fruits.reduce import fit_reduction, project_staged
from fruits.s3a import configure_s3a, is_s3, storage_errors_as_user_errors
from fruits.spark_session import session_conf
from fruits.tally import RunTally, RunTallyParam

# ~5 s of CNN work at 96 px: a task's own cost (~0.2 s: launch, the hand-over to Python, its
# moments through the accumulator) stays under 5%. On 2 592 images, 2 tasks ran as fast as 4, 15%
# faster than 8.
IMAGES_PER_TASK = 2_000


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
    if is_s3(config.input) or is_s3(config.output):
        configure_s3a(spark, config)

    with clock.stage("ingest"):
        with storage_errors_as_user_errors(config.input, config, doing="list the input"):
            images = read_images(spark, config.input)
            listed = listed_files(images)
        if not listed:
            raise UserError(
                f"No image files ({IMAGE_GLOB}) under {config.input!r}: put images in "
                "<label>/<file>.jpg folders there, or point --input elsewhere."
            )
        with storage_errors_as_user_errors(config.output, config, doing="prepare the output"):
            output = RunOutput(spark, config.output)
            output.claim(run_id, config.overwrite)

    store = ParquetStore.at(output.uri, config)
    partitions = config.partitions or choose_partitions(len(listed), spark.sparkContext.defaultParallelism)
    job_conf = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(config.batch_size), **scan_conf(partitions),
                # Spark's own Parquet writes here are the model's dense matrices: dictionary
                # encoding of unique doubles only costs time.
                "parquet.enable.dictionary": "false"}
    with session_conf(spark, job_conf):
        tally = spark.sparkContext.accumulator(RunTally(), RunTallyParam())
        try:
            with clock.stage("featurize", images=len(listed)), worker_errors_as_user_errors(), \
                    storage_errors_as_user_errors(config.input, config):
                staged = featurize(with_labels(images), config, store, tally)
        except UserError:
            output.abandon()  # e.g. no weights: nothing was written, leave no folder behind
            raise
        with storage_errors_as_user_errors(config.output, config):
            results = _reduce_and_write(spark, config, clock, output, store, images, listed, tally.value, staged)

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
                      store: ParquetStore, images: DataFrame, listed: list[str], tally: RunTally,
                      staged: list[int]) -> dict:
    """Error rows, scaler + PCA, and the result files; returns the manifest's result fields."""
    backbone = BACKBONES[config.model]
    unread = len(listed) - tally.rows  # zero-byte files: Spark's scan drops them
    read_count, failed_count = len(listed), tally.failed + unread
    ok_count = read_count - failed_count

    def write_errors():
        if unread:
            rows = unread_files(spark, listed, images.select("path")).collect()
            store.write(f"{ERRORS}/part-unread.parquet", pa.Table.from_pylist(
                [{**row.asDict(), "error": EMPTY_FILE} for row in rows], schema=ERROR_SCHEMA))
        if not store.files(ERRORS):  # readers expect the folder, even with no error rows
            store.write(f"{ERRORS}/{part_file(0)}", ERROR_SCHEMA.empty_table())

    if ok_count < 2:
        with clock.stage("write"):
            write_errors()
        raise UserError(
            f"Only {ok_count} of {read_count} images could be decoded (PCA needs at least 2); "
            f"the reasons are in {output.child(ERRORS)}."
        )

    with clock.stage("reduce"):
        reduction = fit_reduction(tally.moments, k=config.k, variance=config.variance)

    with clock.stage("write"):
        write_errors()
        save_pipeline_model(spark, reduction, store, MODEL)
        written = project_staged(spark, store, staged, reduction, source=STAGED, target=FEATURES)
        store.delete_dir(STAGED)
    if written != ok_count:
        raise RuntimeError(f"wrote {written} feature rows for {ok_count} usable images")

    return {
        "counts": {"read": read_count, "ok": ok_count, "failed": failed_count},
        "labels": dict(sorted(tally.labels.items())),
        "splits": dict(sorted(tally.splits.items())),
        "model": {"name": backbone.name, "weights": config.weights, "image_size": config.image_size,
                  "feature_dim": backbone.feature_dim},
        "pca": {"k": reduction.k, "variance_target": None if config.k else config.variance,
                "variance_kept": reduction.variance_kept, "fit_rows": reduction.fit_rows,
                "explained_variance": reduction.explained_variance},
    }
