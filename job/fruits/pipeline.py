"""The job: ingest -> featurize -> reduce -> write, with the manifest written last."""

import dataclasses
import datetime as dt
import platform
import time
import uuid
from importlib import metadata

from pyspark.sql import SparkSession

from fruits import __version__
from fruits.backbones import BACKBONES
from fruits.config import JobConfig
from fruits.errors import UserError, worker_errors_as_user_errors
from fruits.featurize import featurize, plan_tasks
from fruits.ingest import Listing, list_images
from fruits.output import ERROR_SCHEMA, ERRORS, FEATURES, MODEL, STAGED, RunOutput, check_separate, part_file
from fruits.progress import StageClock
from fruits.model_files import save_pipeline_model
from fruits.reduce import fit_reduction, max_components, project_staged
from fruits.s3a import configure_s3a, storage_errors_as_user_errors
from fruits.storage import Store
from fruits.tally import RunTally, RunTallyParam

# ~5 s of CNN work at 96 px: a task's own cost (~0.2 s: launch, the hand-over to Python, its
# moments through the accumulator) stays under 5%. On 2 592 images, 2 tasks ran as fast as 4, 15%
# faster than 8.
IMAGES_PER_TASK = 2_000


def choose_partitions(images: int, cores: int) -> int:
    """Featurize tasks: a multiple of the cores (no half-empty last wave), at most
    IMAGES_PER_TASK images each: each task pays scheduling plus a model warm-up."""
    waves = max(1, -(-images // (cores * IMAGES_PER_TASK)))
    return max(1, min(images, cores * waves))


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
    source, target = Store.at(config.input, config), Store.at(config.output, config)
    check_separate(source, target, shown=(config.input, config.output))
    if not source.is_local or not target.is_local:  # for Spark's own S3 access (event logs, users' reads)
        configure_s3a(spark, config)

    with clock.stage("ingest"):
        with storage_errors_as_user_errors(config.input, config, doing="list the input"):
            listing = list_images(source, shown=config.input)
        with storage_errors_as_user_errors(config.output, config, doing="prepare the output"):
            output = RunOutput(target, shown=config.output)
            output.claim(run_id, config.overwrite)

    images = len(listing.paths)
    partitions = config.partitions or choose_partitions(images, spark.sparkContext.defaultParallelism)
    tally = spark.sparkContext.accumulator(RunTally(), RunTallyParam())
    try:
        with clock.stage("featurize", images=images) as progress, worker_errors_as_user_errors(), \
                storage_errors_as_user_errors(config.output, config):
            tasks = plan_tasks(listing.table(), partitions) if images else []
            staged = featurize(spark, tasks, config, source, target, tally, progress) if tasks else []
    except UserError:
        output.abandon()  # e.g. no weights: nothing was written, leave no folder behind
        raise
    with storage_errors_as_user_errors(config.output, config):
        results = _reduce_and_write(spark, config, clock, output, target, listing, tally.value, staged)

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
                 "core_seconds_per_1000_images": round(cores * wall * 1000 / max(images, 1), 1)},
        "files": {"features": FEATURES, "errors": ERRORS, "model": MODEL},
        "config": config.to_dict(),
        "versions": _versions(spark),
    }
    with storage_errors_as_user_errors(config.output, config):
        output.complete(manifest)
    return manifest


def _reduce_and_write(spark: SparkSession, config: JobConfig, clock: StageClock, output: RunOutput,
                      store: Store, listing: Listing, tally: RunTally, staged: list[int]) -> dict:
    """Error rows, scaler + PCA, and the result files; returns the manifest's result fields."""
    backbone = BACKBONES[config.model]
    read_count = len(listing.paths) + len(listing.problems)
    failed_count = tally.failed + len(listing.problems)
    ok_count = read_count - failed_count

    def write_errors():
        if listing.problems:  # what listing found: loops, dangling links, unreadable folders
            store.write(f"{ERRORS}/part-listing.parquet", listing.problem_rows())
        if not store.files(ERRORS):  # readers expect the folder, even with no error rows
            store.write(f"{ERRORS}/{part_file(0)}", ERROR_SCHEMA.empty_table())

    if ok_count < 2:
        with clock.stage("write"):
            write_errors()
        raise UserError(
            f"Only {ok_count} of {read_count} images could be decoded (PCA needs at least 2); "
            f"the reasons are in {output.child(ERRORS)}."
        )

    warnings = []
    k = config.k
    if k is not None and k > (most := max_components(tally.moments.n, backbone.feature_dim)):
        warnings.append(f"--k {k} asked for more components than {tally.moments.n} images of "
                        f"{backbone.feature_dim} features can give: kept k = {most}.")
        k = most
    with clock.stage("reduce"):
        reduction = fit_reduction(tally.moments, k=k, variance=config.variance)

    with clock.stage("write"):
        write_errors()
        save_pipeline_model(spark, reduction, store, MODEL)
        written = project_staged(spark, store, staged, reduction, source=STAGED, target=FEATURES)
        store.delete_dir(STAGED)
    if written != ok_count:
        raise RuntimeError(f"wrote {written} feature rows for {ok_count} usable images")

    return {
        "counts": {"read": read_count, "ok": ok_count, "failed": failed_count,
                   "skipped": dict(sorted(listing.skipped.items()))},
        "labels": dict(sorted(tally.labels.items())),
        "splits": dict(sorted(tally.splits.items())),
        "model": {"name": backbone.name, "weights": config.weights, "image_size": config.image_size,
                  "feature_dim": backbone.feature_dim},
        "pca": {"k": reduction.k, "k_requested": config.k, "variance_target": None if config.k else config.variance,
                "variance_kept": reduction.variance_kept, "fit_rows": reduction.fit_rows,
                "explained_variance": reduction.explained_variance},
        "warnings": warnings,
    }
