"""The job: ingest -> featurize -> reduce -> write, with the manifest written last."""

import dataclasses
import datetime as dt
import hashlib
import json
import platform
import time
import uuid

from pyspark.sql import SparkSession

from fruits import __version__, installed_versions
from fruits.settings.backbones import BACKBONES
from fruits.settings.config import LATEST, JobConfig
from fruits.settings.errors import UserError, worker_errors_as_user_errors
from fruits.inference.featurize import ModelInBackground, featurize, plan_tasks
from fruits.io.ingest import Listing, list_images
from fruits.io.output import (ERROR_SCHEMA, ERRORS, FEATURES, MODEL, MOMENTS_FILE, STAGED, RunOutput, check_separate,
                              part_file, same_place)
from fruits.progress import StageClock
from fruits.fit.model_files import load_reduction, save_pipeline_model
from fruits.results.previous_run import (PreviousRun, ReusePlan, check_same_space, finished_run, latest_run, plan_reuse,
                                         saved_tally, tally_rows, with_applied_settings)
from fruits.fit.reduce import Reduction, fit_reduction, max_components, project_rows
from fruits.io.s3_settings import S3Settings
from fruits.spark_session import configure_s3a
from fruits.io.storage import Store, storage_errors_as_user_errors
from fruits.fit.tally import RunTally, merge_stats, stats_file

# ~5 s of CNN work at 96 px: a task's own cost (~0.2 s: launch, the hand-over to Python, its
# moments through the accumulator) stays under 5%. On 2 592 images, 2 tasks ran as fast as 4, 15%
# faster than 8.
IMAGES_PER_TASK = 2_000
DROPPED = f"{STAGED}/dropped"  # the tallies of the previous run's rows an incremental run leaves out
CARRIED = -1  # the partition number of the tally carried over from the previous run


def choose_partitions(images: int, cores: int) -> int:
    """Featurize tasks: a multiple of the cores (no half-empty last wave), at most
    IMAGES_PER_TASK images each: each task pays scheduling plus a model warm-up."""
    waves = max(1, -(-images // (cores * IMAGES_PER_TASK)))
    return max(1, min(images, cores * waves))


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def default_run_id(spark: SparkSession) -> str:
    """On Kubernetes, the application's name: spark-submit names the driver pod and the app
    after the SparkApplication (the spark-operator passes `--name`), which is stable across
    the driver attempts of one application and unique per scheduled run; a retried driver
    then finds its own output. Elsewhere, a new timestamped id."""
    conf = spark.sparkContext.getConf()
    if conf.get("spark.kubernetes.driver.pod.name", None):
        return spark.sparkContext.appName
    return new_run_id()


def planned_cores(spark: SparkSession) -> int:
    """The cores the job asked for (executors x cores each, or dynamic allocation's maximum),
    not the ones registered so far: on Kubernetes, executors keep registering while the job
    starts, and tasks cut for the first two would leave the rest idle."""
    sc = spark.sparkContext
    conf = sc.getConf()
    if sc.master.startswith("local"):
        return sc.defaultParallelism
    if conf.get("spark.cores.max", None):  # a standalone cluster's cap
        return max(1, int(conf.get("spark.cores.max")))
    dynamic = conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
    executors = conf.get("spark.dynamicAllocation.maxExecutors" if dynamic else "spark.executor.instances", None)
    if executors and executors.isdigit() and int(executors) < 100_000:
        return max(1, int(executors) * int(conf.get("spark.executor.cores", "1")))
    return sc.defaultParallelism


def merge_groups(spark: SparkSession, feature_dim: int) -> int:
    """Spark tasks that merge the partitions' tallies: one per executor, within what
    spark.driver.maxResultSize lets the driver receive (a d x d float64 matrix each)."""
    conf = spark.sparkContext.getConf()
    executors = 1 if spark.sparkContext.master.startswith("local") else planned_cores(spark) // int(
        conf.get("spark.executor.cores", "1"))
    limit = spark.sparkContext._jsc.sc().conf().getSizeAsBytes("spark.driver.maxResultSize", "1g")
    per_group = feature_dim * feature_dim * 8 + (1 << 20)
    return max(1, min(executors, limit // (2 * per_group) if limit else executors))


def plan_fingerprint(listing: Listing, partitions: int, config: JobConfig, previous: str | None = None) -> str:
    """What a finished partition's staged files depend on: the images (path, size, time), how
    they were cut and featurized, and the previous run whose rows are reused. A retried
    driver keeps the partitions of a run with the same fingerprint."""
    digest = hashlib.sha256()
    settings = {name: getattr(config, name) for name in ("model", "weights", "image_size", "runtime", "fit_fraction",
                                                          "seed")}
    digest.update(json.dumps([partitions, settings, previous], sort_keys=True).encode())
    for path, size, modified in zip(listing.paths, listing.sizes, listing.modified):
        digest.update(f"{path}\0{size}\0{modified}\n".encode())
    return digest.hexdigest()[:32]


def _versions(spark: SparkSession) -> dict[str, str]:
    return {"fruits": __version__, "python": platform.python_version(), "spark": spark.version,
            **installed_versions("tensorflow-cpu", "tensorflow", "keras", "numpy", "pillow", "pyarrow", "pandas")}


def run_job(spark: SparkSession, config: JobConfig, clock: StageClock | None = None,
            run_id: str | None = None, model: ModelInBackground | None = None) -> dict:
    """Run the whole job for `config`; returns the manifest it wrote. `model` is the model
    preparation the caller started before Spark, if it did (else it starts here)."""
    if not config.input or not config.output:
        raise UserError("The job needs both --input and --output.")
    config = with_applied_settings(config)
    if model is None or not model.prepares_for(config):
        model = ModelInBackground(config)
    clock = clock or StageClock()
    run_id = run_id or config.run_id or default_run_id(spark)
    if "{run_id}" in config.output:  # scheduled runs: one output per run
        config = dataclasses.replace(config, output=config.output.replace("{run_id}", run_id))
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    s3 = S3Settings.of(config)  # the job's settings enter the storage layer here, once
    source, target = Store.at(config.input, s3), Store.at(config.output, s3)
    check_separate(source, target, shown=(config.input, config.output))
    if not source.is_local or not target.is_local:  # for Spark's own S3 access (event logs, users' reads)
        configure_s3a(spark, s3)
    warnings: list[str] = []
    previous, applied = _previous_runs(config, s3, target, warnings)
    applied_model = _applied_reduction(applied, s3) if applied else None  # before any work: it may be missing

    with clock.stage("ingest"):
        with storage_errors_as_user_errors(config.input, s3, doing="list the input"):
            listing = list_images(source, shown=config.input)
        with storage_errors_as_user_errors(previous.uri if previous else "", s3, doing="read the previous run"):
            plan = plan_reuse(listing, previous) if previous else None
        to_featurize = plan.featurize if plan else listing
        cores = planned_cores(spark)
        partitions = config.partitions or choose_partitions(len(to_featurize.paths), cores)
        fingerprint = plan_fingerprint(listing, partitions, config, previous.run_id if previous else None)
        with storage_errors_as_user_errors(config.output, s3, doing="prepare the output"):
            output = RunOutput(target, shown=config.output)
            resuming = output.claim(run_id, config.overwrite, fingerprint)

    images = len(listing.paths)
    tasks = plan_tasks(to_featurize.table(), partitions) if to_featurize.paths else {}
    kept = plan.sources(first_partition=len(tasks)) if plan else {}  # the previous run's rows, by file
    done = set()
    if resuming:  # a retried driver of this run: keep what its finished tasks committed
        staged = set(target.files(STAGED))
        done = {p for p in [*tasks, *kept] if stats_file(p) in staged}
        for partition in set(tasks) - done:  # a task that died half-way may have left error rows
            target.delete(f"{ERRORS}/{part_file(partition)}")
    todo = {partition: rows for partition, rows in tasks.items() if partition not in done}
    try:
        with clock.stage("featurize", images=sum(map(len, todo.values()))) as progress, \
                worker_errors_as_user_errors(), storage_errors_as_user_errors(config.output, s3):
            model_file = model.result() if todo else None  # converted or downloaded once, on the driver
            featurize(spark, todo, config, source, target, progress, model_file)
    except UserError:
        output.abandon()  # e.g. no weights: nothing was written, leave no folder behind
        raise
    with storage_errors_as_user_errors(config.output, s3):
        groups = merge_groups(spark, BACKBONES[config.model].feature_dim)
        carried = _carried_tally(spark, plan, kept, done, config, target, groups, clock) if plan else None
        tallied = sorted([*tasks, *(kept if carried is None else ())])
        tally, received = merge_stats(spark, target, STAGED, tallied, groups) if tallied else (RunTally(), 0)
        tally = tally.merge(carried) if carried is not None else tally
        staged = {p: (target, f"{STAGED}/{part_file(p)}", None) for p in tasks}
        results = _reduce_and_write(spark, config, clock, output, target, listing, tally, {**staged, **kept},
                                    applied, applied_model, warnings)

    wall = time.perf_counter() - started
    manifest = {
        "format": "fruits-run/1",
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "input": config.input,
        "output": output.uri,
        **results,
        "timings_s": {**clock.timings, "total": round(wall, 3)},
        "incremental": {**plan.summary(), "model": "reused" if applied else "refit"} if plan else None,
        "featurize": {"partitions": len(tasks), "reused_partitions": len(done), "planned_cores": cores,
                      "stats_merge_tasks": groups, "stats_bytes_to_driver": received},
        "cost": {"featurize_core_seconds": round(tally.core_seconds, 1),
                 "core_seconds_per_1000_images": round(tally.core_seconds * 1000 / max(images, 1), 1)},
        "files": {"features": FEATURES, "errors": ERRORS, "model": MODEL},
        "config": config.to_dict(),
        "versions": _versions(spark),
    }
    with storage_errors_as_user_errors(config.output, s3):
        output.complete(manifest)
    return manifest


def _previous_runs(config: JobConfig, s3: S3Settings, target: Store,
                   warnings: list[str]) -> tuple[PreviousRun | None, PreviousRun | None]:
    """(the run whose rows are reused, the run whose model is applied), checked: finished,
    made with this run's backbone settings, and not this run's own output."""
    previous = applied = None
    if config.incremental_from:
        spec = config.incremental_from
        place = spec[len(LATEST):] if spec.startswith(LATEST) else spec
        with storage_errors_as_user_errors(place, s3, doing="read the previous run"):
            if spec.startswith(LATEST):
                previous = latest_run(place, config, s3, exclude=target, warnings=warnings)
                if previous is None:
                    warnings.append(f"No finished run under {place!r} yet: every image went through the CNN "
                                    "(a full run); the next run will reuse this one.")
            else:
                previous = finished_run(spec, s3, "--incremental-from")
        if previous is not None:
            if same_place(previous.store, target):
                raise UserError(f"--incremental-from {spec!r} is this run's --output: the run would delete the rows "
                                "it reuses; write to a new --output (e.g. one containing {run_id}).")
            check_same_space(config, previous, "--incremental-from")
            applied = previous if config.reuse_model else None
    if config.apply_model:
        with storage_errors_as_user_errors(config.apply_model, s3, doing="read the run to apply"):
            applied = finished_run(config.apply_model, s3, "--apply-model")
    return previous, applied


def _carried_tally(spark, plan: ReusePlan, kept: dict, done: set, config: JobConfig, target: Store, groups: int,
                   clock: StageClock) -> RunTally | None:
    """The tally of the rows kept from the previous run, as one partition (CARRIED): its saved
    tally less the rows dropped, or None when it saved none that fits (then the kept rows
    are tallied into the staging area, as partitions `kept`, and merged with the rest)."""
    with clock.stage("reuse"):
        saved = saved_tally(plan.previous) if config.fit_fraction >= 1.0 else None
        if saved is None:
            tally_rows(spark, {p: work for p, work in kept.items() if p not in done}, config, target, STAGED)
            return None
        dropped = plan.dropped_sources()
        tally_rows(spark, dropped, config, target, DROPPED)
        less, _ = merge_stats(spark, target, DROPPED, sorted(dropped), groups) if dropped else (RunTally(), 0)
        return saved.without(less, partition=CARRIED)


def _applied_reduction(applied: PreviousRun, s3: S3Settings) -> Reduction:
    with storage_errors_as_user_errors(applied.uri, s3, doing="read the model of"):
        try:
            return load_reduction(applied.store, MODEL, fit_rows=(applied.manifest.get("pca") or {}).get("fit_rows", 0))
        except (FileNotFoundError, KeyError, ValueError):
            raise UserError(f"The model of {applied.uri!r} is missing or incomplete ({applied.uri}/{MODEL}): that "
                            "output was changed after its run finished; apply another run, or rerun it.") from None


def _reduce_and_write(spark: SparkSession, config: JobConfig, clock: StageClock, output: RunOutput,
                      store: Store, listing: Listing, tally: RunTally, rows: dict, applied: PreviousRun | None,
                      applied_model: Reduction | None, warnings: list[str]) -> dict:
    """Error rows, scaler + PCA (fitted, or `applied`'s), and the result files; returns the
    manifest's result fields. `rows`: the feature rows to project, as project_rows's sources."""
    backbone = BACKBONES[config.model]
    read_count = len(listing.paths) + len(listing.problems)
    failed_count = tally.failed + len(listing.problems)
    ok_count = read_count - failed_count

    def write_errors():
        if listing.problems:  # what listing found: loops, dangling links, unreadable folders
            store.write(f"{ERRORS}/part-listing.parquet", listing.problem_rows())
        if not store.files(ERRORS):  # readers expect the folder, even with no error rows
            store.write(f"{ERRORS}/{part_file(0)}", ERROR_SCHEMA.empty_table())

    needed = 1 if applied else 2
    if ok_count < needed:
        with clock.stage("write"):
            write_errors()
        raise UserError(
            f"Only {ok_count} of {read_count} images could be decoded "
            f"({'at least 1 is needed' if applied else 'PCA needs at least 2'}); "
            f"the reasons are in {output.child(ERRORS)}."
        )

    k = config.k
    if not applied and k is not None and k > (most := max_components(tally.moments.n, backbone.feature_dim)):
        warnings.append(f"--k {k} asked for more components than {tally.moments.n} images of "
                        f"{backbone.feature_dim} features can give: kept k = {most}.")
        k = most
    with clock.stage("reduce"):
        reduction = applied_model if applied_model is not None else \
            fit_reduction(tally.moments, k=k, variance=config.variance)

    with clock.stage("write"):
        write_errors()
        save_pipeline_model(reduction, store, MODEL, spark.version)
        store.write_bytes(f"{MODEL}/{MOMENTS_FILE}", tally.to_bytes())  # what the next incremental run updates
        staged = set(store.files(STAGED))
        written = project_rows(spark, {p: source for p, source in rows.items()
                                       if source[2] is not None or source[1].rsplit("/", 1)[1] in staged},
                               reduction, store, FEATURES)
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
        "pca": {"k": reduction.k, "k_requested": None if applied else config.k,
                "variance_target": None if config.k or applied else config.variance,
                "variance_kept": reduction.variance_kept, "fit_rows": reduction.fit_rows,
                "explained_variance": reduction.explained_variance,
                "fitted_by": {"run_id": applied.run_id, "output": applied.uri} if applied else None},
        "warnings": warnings,
    }
