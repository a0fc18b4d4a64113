"""The job: plan -> execute -> record.

`run_job` gathers what the plan needs (the stores, the previous runs, the listing), plans the
run (fruits.plan), executes it (featurize -> fit -> write, in Spark) and records it in the
manifest, written last.
"""

import dataclasses
import platform
import sys
import time
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from fruits import __version__, installed_versions
from fruits.featurize.backbone_model import BackboneInBackground
from fruits.featurize.partitions import FeaturizePartitions, featurize
from fruits.featurize.runtimes import model_digest
from fruits.fit.classifier import fit_head
from fruits.fit.reduce import Reduction, fit_reduction, max_components
from fruits.fit.tally import RunTally, merge_stats, stats_file
from fruits.ingest.listing import Listing, list_images
from fruits.io.output import (
    ERROR_SCHEMA,
    ERRORS,
    FEATURES,
    MODEL,
    MOMENTS_FILE,
    RunOutput,
    check_separate,
    part_file,
    same_place,
)
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store, storage_errors_as_user_errors
from fruits.plan import RunPlan, plan_run, with_run_id
from fruits.progress import StageClock
from fruits.runs.finished_run import FinishedRun, latest_run, open_finished_run
from fruits.runs.reuse import (
    ReusePlan,
    TallySources,
    check_same_model,
    check_same_space,
    plan_reuse,
    saved_tally,
    tally_rows,
    with_applied_settings,
)
from fruits.settings.backbones import BACKBONES
from fruits.settings.config import LATEST, JobConfig
from fruits.settings.errors import UserError, worker_errors_as_user_errors
from fruits.spark_session import configure_s3a, default_run_id, kubernetes_app_name, merge_groups, planned_cores
from fruits.write.head_files import copy_head, head_record, save_head
from fruits.write.manifest import BackboneRecord, ClassifierRecord, Counts, FeaturizeRecord, Manifest, PcaRecord, now
from fruits.write.model_files import load_reduction, save_pipeline_model
from fruits.write.projection import project_rows
from fruits.write.run_log import DriverLog, KeptLog
from fruits.write.run_metrics import (
    MetricsTarget,
    failure_metrics,
    job_key,
    output_prefix,
    push,
    push_record,
    push_warning,
    success_metrics,
)

DROPPED = "dropped"  # in the run's staging folder: the tallies of the previous run's rows left out
CARRIED = -1  # the partition number of the tally carried over from the previous run


@dataclass(frozen=True)
class Stores:
    """Where a run reads and writes, with the S3 settings both use."""

    s3: S3Settings
    source: Store
    target: Store


@dataclass(frozen=True)
class Context:
    """What every step of executing a plan uses."""

    spark: SparkSession
    stores: Stores
    clock: StageClock
    backbone: BackboneInBackground


@dataclass
class Executed:
    """What executing a plan produced, for the manifest."""

    output: RunOutput
    tally: RunTally = field(default_factory=RunTally)
    reduction: Reduction | None = None
    reused_partitions: int = 0
    merge_tasks: int = 0
    bytes_to_driver: int = 0
    warnings: list[str] = field(default_factory=list)
    files: dict[str, dict] = field(default_factory=dict)  # the published files: size, time, SHA-256
    hashes: dict[str, str] = field(default_factory=dict)  # SHA-256 of the feature files, as written
    keep_staging: bool = False  # a failure whose staged files the user is pointed to
    model_sha256: str | None = None  # the TFLite backbone's content hash (None: --runtime tf)
    classifier: ClassifierRecord | None = None  # the head saved with the model (fitted, or kept)

    @property
    def staging(self) -> str:
        return self.output.staging


@dataclass(frozen=True)
class RunStart:
    """A run's id and clock, and when it started."""

    run_id: str
    clock: StageClock
    at: str = field(default_factory=now)  # wall-clock time, for the manifest
    perf: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return round(time.perf_counter() - self.perf, 3)


def run_job(
    spark: SparkSession,
    config: JobConfig,
    clock: StageClock | None = None,
    run_id: str | None = None,
    backbone: BackboneInBackground | None = None,
    log: DriverLog | None = None,
) -> dict:
    """Run the whole job for `config`; returns the manifest it wrote. `backbone` is the
    backbone preparation the caller started before Spark, if it did (else it starts here);
    `log` is the driver's log, kept under the output's _logs/ once the run holds its output."""
    start = RunStart(run_id or config.run_id or default_run_id(spark), clock or StageClock())
    metrics = metrics_target(spark, config)
    try:
        return run_and_record(spark, config, start, backbone, metrics, log)
    except BaseException as exc:
        if metrics is not None:  # a failure is pushed too: an alert names it
            timings = {**start.clock.timings, "total": start.seconds()}
            reason = push(metrics, failure_metrics(metrics, start.run_id, exc, timings, time.time()), replace=False)
            if reason:
                print(f"Warning: {push_warning(metrics, reason)}", file=sys.stderr, flush=True)
        raise


def metrics_target(spark: SparkSession, config: JobConfig) -> MetricsTarget | None:
    """Where the run's metrics go (--metrics-url), grouped so that a schedule's runs continue one series."""
    if not config.metrics_url:
        return None
    job = config.metrics_job or job_key(kubernetes_app_name(spark))
    return MetricsTarget(config.metrics_url, job, output_prefix(config.output or ""))


def run_and_record(
    spark: SparkSession,
    config: JobConfig,
    start: RunStart,
    backbone: BackboneInBackground | None,
    metrics: MetricsTarget | None,
    log: DriverLog | None,
) -> dict:
    run_id, clock = start.run_id, start.clock
    config = with_applied_settings(with_run_id(config, run_id))
    assert config.output is not None  # with_run_id refuses a config without --input and --output
    if backbone is None or not backbone.prepares_for(config):
        backbone = BackboneInBackground(config)
    stores = open_stores(spark, config)
    with clock.stage("ingest"):
        plan = gather_and_plan(spark, config, run_id, stores)
        with storage_errors_as_user_errors(config.output, stores.s3, doing="prepare the output"):
            output = RunOutput(stores.target, shown=config.output)
            resuming = output.claim(run_id, config.overwrite, plan.fingerprint)
    executed = Executed(output)
    kept = KeptLog(log, stores.target, run_id) if log is not None else None
    try:
        execute(Context(spark, stores, clock, backbone), plan, executed, resuming)
        with storage_errors_as_user_errors(config.output, stores.s3):
            executed.files = output.publish(executed.hashes)
            manifest = record(plan, executed, clock, start.at, start.seconds(), spark.version)
            manifest = dataclasses.replace(manifest, log=kept.name if kept else None)
            if metrics is not None:  # before the manifest, which records whether the push worked
                manifest = pushed(manifest, metrics)
            output.complete(manifest.to_dict())
    except BaseException as exc:
        # a user error is final: its staged files go (unless the message points at them); a
        # crash keeps them for a retried driver of this run, which resumes from its tallies
        output.abandon(keep_staging=executed.keep_staging or not isinstance(exc, UserError))
        if kept is not None:
            kept.keep(exc)
        raise
    if kept is not None:
        kept.keep(None)
    return manifest.to_dict()


def pushed(manifest: Manifest, metrics: MetricsTarget) -> Manifest:
    """The manifest, once its metrics went to the Pushgateway, saying whether they did."""
    reason = push(metrics, success_metrics(metrics, manifest, time.time()), replace=True)
    warnings = [*manifest.warnings, push_warning(metrics, reason)] if reason else manifest.warnings
    return dataclasses.replace(manifest, metrics=push_record(metrics, reason), warnings=warnings)


def open_stores(spark: SparkSession, config: JobConfig) -> Stores:
    """The input's and the output's stores, refused when they overlap; S3A set up for Spark's
    own S3 access (event logs, users' reads) when either is on S3."""
    s3 = S3Settings.of(config)  # the job's settings enter the storage layer here, once
    assert config.input is not None and config.output is not None  # with_run_id refused a config without
    stores = Stores(s3, Store.at(config.input, s3), Store.at(config.output, s3))
    check_separate(stores.source, stores.target, shown=(config.input, config.output))
    if not stores.source.is_local or not stores.target.is_local:
        configure_s3a(spark, s3)
    return stores


def gather_and_plan(spark: SparkSession, config: JobConfig, run_id: str, stores: Stores) -> RunPlan:
    """Read what the plan depends on (the previous runs, the input's listing), then plan."""
    warnings: list[str] = []
    assert config.input is not None  # with_run_id refused a config without --input
    previous, applied = previous_runs(config, stores, warnings)
    applied_model = (applied, applied_reduction(applied, stores.s3)) if applied else None  # before any work
    with storage_errors_as_user_errors(config.input, stores.s3, doing="list the input"):
        listing = list_images(stores.source, shown=config.input)
    with storage_errors_as_user_errors(previous.uri if previous else "", stores.s3, doing="read the previous run"):
        reuse = plan_reuse(listing, previous) if previous else None
    return plan_run(config, run_id, listing, planned_cores(spark), reuse, applied_model, tuple(warnings))


def previous_runs(
    config: JobConfig, stores: Stores, warnings: list[str]
) -> tuple[FinishedRun | None, FinishedRun | None]:
    """(the run whose rows are reused, the run whose model is applied), checked: finished,
    made with this run's backbone settings, and not this run's own output."""
    previous = applied = None
    if config.incremental_from:
        previous = incremental_base(config, stores, warnings)
        applied = previous if config.reuse_model else None
    if config.apply_model:
        with storage_errors_as_user_errors(config.apply_model, stores.s3, doing="read the run to apply"):
            applied = open_finished_run(config.apply_model, stores.s3, "--apply-model")
    return previous, applied


def incremental_base(config: JobConfig, stores: Stores, warnings: list[str]) -> FinishedRun | None:
    """The run --incremental-from names (or the latest under a prefix; None when there is none yet)."""
    spec = config.incremental_from or ""
    place = spec[len(LATEST) :] if spec.startswith(LATEST) else spec
    with storage_errors_as_user_errors(place, stores.s3, doing="read the previous run"):
        if spec.startswith(LATEST):
            previous = latest_run(place, config, stores.s3, exclude=stores.target, warnings=warnings)
            if previous is None:
                warnings.append(
                    f"No finished run under {place!r} yet: every image went through the CNN "
                    "(a full run); the next run will reuse this one."
                )
                return None
        else:
            previous = open_finished_run(spec, stores.s3, "--incremental-from")
    if same_place(previous.store, stores.target):
        raise UserError(
            f"--incremental-from {spec!r} is this run's --output: the run would delete the rows "
            "it reuses; write to a new --output (e.g. one containing {run_id})."
        )
    check_same_space(config, previous, "--incremental-from")
    return previous


def applied_reduction(applied: FinishedRun, s3: S3Settings) -> Reduction:
    with storage_errors_as_user_errors(applied.uri, s3, doing="read the model of"):
        try:
            return load_reduction(applied.store, MODEL, fit_rows=(applied.manifest.get("pca") or {}).get("fit_rows", 0))
        except (FileNotFoundError, KeyError, ValueError):
            raise UserError(
                f"The model of {applied.uri!r} is missing or incomplete ({applied.uri}/{MODEL}): that "
                "output was changed after its run finished; apply another run, or rerun it."
            ) from None


def execute(context: Context, plan: RunPlan, executed: Executed, resuming: bool) -> Executed:
    """featurize -> tally -> fit -> write, in Spark."""
    done = resumed_partitions(plan, context.stores.target, executed.staging) if resuming else set()
    executed.reused_partitions = len(done)
    featurize_images(context, plan, executed, done)
    assert plan.config.output is not None  # with_run_id refused a config without --output
    with storage_errors_as_user_errors(plan.config.output, context.stores.s3):
        tally_run(context, plan, executed, done)
        reduce_and_write(context, plan, executed)
    return executed


def resumed_partitions(plan: RunPlan, target: Store, staging: str) -> set[int]:
    """A retried driver of this run: the partitions its finished tasks committed (kept), and
    the error rows of those that died half-way removed."""
    staged = set(target.files(staging))
    done = {p for p in [*plan.tasks, *plan.kept] if stats_file(p) in staged}
    for partition in set(plan.tasks) - done:
        target.delete(f"{staging}/{ERRORS}/{part_file(partition)}")
    return done


def featurize_images(context: Context, plan: RunPlan, executed: Executed, done: set[int]) -> None:
    todo = {partition: images for partition, images in plan.tasks.items() if partition not in done}
    stores = context.stores
    assert plan.config.output is not None  # with_run_id refused a config without --output
    try:
        with (
            context.clock.stage("featurize", images=sum(map(len, todo.values()))) as progress,
            worker_errors_as_user_errors(),
            storage_errors_as_user_errors(plan.config.output, stores.s3),
        ):
            # converted or downloaded once, on the driver; a tflite model always, for its hash
            prepared = context.backbone.result() if todo or plan.config.runtime == "tflite" else None
            executed.model_sha256 = backbone_digest(plan, prepared)
            task = FeaturizePartitions(plan.config, stores.source, stores.target, executed.staging, progress)
            featurize(context.spark, todo, task, prepared)
    except UserError:
        executed.output.abandon()  # e.g. no weights: nothing was written, leave no folder behind
        raise


def backbone_digest(plan: RunPlan, prepared: bytes | None) -> str | None:
    """The TFLite backbone's hash, checked against the runs whose features or model this run
    reuses (None for --runtime tf: its weights are a setting, compared as one)."""
    if plan.config.runtime != "tflite" or prepared is None:
        return None
    digest = model_digest(prepared)
    if plan.reuse is not None:
        check_same_model(plan.reuse.previous, digest, "--incremental-from")
    if plan.applied is not None and plan.applied is not (plan.reuse.previous if plan.reuse else None):
        check_same_model(plan.applied, digest, "--apply-model")
    return digest


def tally_run(context: Context, plan: RunPlan, executed: Executed, done: set[int]) -> None:
    """The run's tally: the featurize tasks' tallies merged, plus the kept rows' (carried over
    from the previous run's saved moments, or tallied again)."""
    spark, target = context.spark, context.stores.target
    groups = merge_groups(spark, BACKBONES[plan.config.backbone].feature_dim)
    carried = carried_tally(context, plan, executed.staging, groups, done) if plan.reuse else None
    tallied = sorted([*plan.tasks, *(plan.kept if carried is None else ())])
    tally, received = merge_stats(spark, target, executed.staging, tallied, groups) if tallied else (RunTally(), 0)
    executed.tally = tally.merge(carried) if carried is not None else tally
    executed.merge_tasks, executed.bytes_to_driver = groups, received


def carried_tally(context: Context, plan: RunPlan, staging: str, groups: int, done: set[int]) -> RunTally | None:
    """The tally of the rows kept from the previous run, as one partition (CARRIED): its saved
    tally less the rows dropped, or None when it saved none that fits (then the kept rows
    are tallied into the staging area, as partitions `kept`, and merged with the rest)."""
    reuse: ReusePlan = plan.reuse  # type: ignore[assignment]  # only called for incremental runs
    config, spark, target = plan.config, context.spark, context.stores.target
    with context.clock.stage("reuse"):
        saved = saved_tally(reuse.previous) if config.fit_fraction >= 1.0 else None
        if saved is None:
            kept = {p: source for p, source in plan.kept.items() if p not in done}
            tally_rows(spark, kept, TallySources(config.fit_fraction, config.seed, target, staging))
            return None
        dropped = reuse.dropped_sources()
        folder = f"{staging}/{DROPPED}"
        tally_rows(spark, dropped, TallySources(config.fit_fraction, config.seed, target, folder))
        less, _ = merge_stats(spark, target, folder, sorted(dropped), groups) if dropped else (RunTally(), 0)
        return saved.without(less, partition=CARRIED)


def counts_of(listing: Listing, tally: RunTally) -> Counts:
    read = len(listing.paths) + len(listing.problems)
    failed = tally.failed + len(listing.problems)
    return Counts(
        read=read,
        ok=read - failed,
        failed=failed,
        skipped=dict(sorted(listing.skipped.items())),
        read_retries=tally.read_retries,
    )


def reduce_and_write(context: Context, plan: RunPlan, executed: Executed) -> None:
    """Error rows, scaler + PCA (fitted, or the applied run's), and the result files, all in
    the run's staging folder (RunOutput.publish moves them into place)."""
    spark, store, clock, staging = context.spark, context.stores.target, context.clock, executed.staging
    counts = counts_of(plan.listing, executed.tally)
    needed = 1 if plan.applied else 2
    if counts.ok < needed:
        with clock.stage("write"):
            write_errors(plan.listing, store, staging)
        executed.keep_staging = True  # the reasons stay where the message says
        raise UserError(
            f"Only {counts.ok} of {counts.read} images could be decoded "
            f"({'at least 1 is needed' if plan.applied else 'PCA needs at least 2'}); "
            f"the reasons are in {executed.output.child(f'{staging}/{ERRORS}')}."
        )
    with clock.stage("reduce"):
        executed.reduction = plan.applied_reduction or fit(plan, executed.tally, executed.warnings)
    with clock.stage("write"):
        write_errors(plan.listing, store, staging)
        # what the next incremental run updates
        store.write_bytes(f"{staging}/{MODEL}/{MOMENTS_FILE}", executed.tally.to_bytes())
        staged = set(store.files(staging))
        sources = {**plan.staged_sources(store, staging), **plan.kept}
        chosen = {
            p: source
            for p, source in sources.items()
            if source.rows is not None or source.file.rsplit("/", 1)[1] in staged
        }
        projected = project_rows(spark, chosen, executed.reduction, store, f"{staging}/{FEATURES}")
        executed.hashes = {done.file[len(staging) + 1 :]: done.sha256 for done in projected if done.rows}
    written = sum(done.rows for done in projected)
    if written != counts.ok:
        raise RuntimeError(f"wrote {written} feature rows for {counts.ok} usable images")
    head_uids = classifier_head(context, plan, executed)
    with clock.stage("write"):  # the pipeline's metadata last: it names the head's stages
        save_pipeline_model(executed.reduction, store, f"{staging}/{MODEL}", spark.version, head_uids)


def classifier_head(context: Context, plan: RunPlan, executed: Executed) -> list[str]:
    """The classifier head's stages in the staged model: fitted on the staged features (in
    Spark), or the applied run's copied (not refitted); none for --classifier none. Returns
    their uids."""
    config, store, staging = plan.config, context.stores.target, executed.staging
    if config.classifier == "none":
        return []
    if plan.applied is not None:
        return kept_head(plan.applied, store, staging, executed)
    with context.clock.stage("classifier"):
        started = time.perf_counter()
        features = store.uri_of(store.path(f"{staging}/{FEATURES}"))
        head = fit_head(context.spark, features, config.seed)
        if head is None:
            executed.warnings.append(
                "No classifier head: the rows could not be split into a train and a held-out part "
                "with two labels or more; the model holds the scaler and PCA only."
            )
            return []
        uids = save_head(head, store, f"{staging}/{MODEL}")
        executed.classifier = head_record(head, time.perf_counter() - started)
    return uids


def kept_head(applied: FinishedRun, store: Store, staging: str, executed: Executed) -> list[str]:
    """The applied run's head, copied with its record (which now names that run)."""
    record = applied.manifest.get("classifier")
    if not record:
        return []
    uids = copy_head(applied.store, MODEL, store, f"{staging}/{MODEL}")
    fitted_by = record.get("fitted_by") or {"run_id": applied.run_id, "output": applied.uri}
    executed.classifier = ClassifierRecord(**{**record, "fitted_by": fitted_by})
    return uids


def fit(plan: RunPlan, tally: RunTally, warnings: list[str]) -> Reduction:
    """Scaler + PCA fitted on the run's moments; a --k larger than the rows allow is capped."""
    config, feature_dim = plan.config, BACKBONES[plan.config.backbone].feature_dim
    k = config.k
    if k is not None and k > (most := max_components(tally.moments.n, feature_dim)):
        warnings.append(
            f"--k {k} asked for more components than {tally.moments.n} images of "
            f"{feature_dim} features can give: kept k = {most}."
        )
        k = most
    return fit_reduction(tally.moments, k=k, variance=config.variance)


def write_errors(listing: Listing, store: Store, staging: str) -> None:
    folder = f"{staging}/{ERRORS}"
    if listing.problems:  # what listing found: loops, dangling links, unreadable folders
        store.write(f"{folder}/part-listing.parquet", listing.problem_rows())
    if not store.files(folder):  # readers expect the folder, even with no error rows
        store.write(f"{folder}/{part_file(0)}", ERROR_SCHEMA.empty_table())


def record(
    plan: RunPlan, executed: Executed, clock: StageClock, started_at: str, wall: float, spark_version: str
) -> Manifest:
    """The run's manifest, from its plan and what executing it produced."""
    config, tally, reduction = plan.config, executed.tally, executed.reduction
    assert reduction is not None  # execute() fitted or applied one, or raised
    backbone = BACKBONES[config.backbone]
    return Manifest(
        run_id=plan.run_id,
        started_at=started_at,
        finished_at=now(),
        input=config.input or "",
        output=executed.output.uri,
        counts=counts_of(plan.listing, tally),
        labels=dict(sorted(tally.labels.items())),
        splits=dict(sorted(tally.splits.items())),
        backbone=BackboneRecord(
            backbone.name,
            config.weights,
            config.image_size,
            backbone.feature_dim,
            config.precision,
            executed.model_sha256,
        ),
        pca=pca_record(plan, reduction),
        warnings=[*plan.warnings, *executed.warnings],
        timings_s={**clock.timings, "total": round(wall, 3)},
        incremental={**plan.reuse.summary(), "model": "reused" if plan.applied else "refit"} if plan.reuse else None,
        featurize=FeaturizeRecord(
            len(plan.tasks),
            executed.reused_partitions,
            plan.cores,
            executed.merge_tasks,
            executed.bytes_to_driver,
            tally.retried,
        ),
        cost={
            "featurize_core_seconds": round(tally.core_seconds, 1),
            "core_seconds_per_1000_images": round(tally.core_seconds * 1000 / max(plan.images, 1), 1),
        },
        files={"features": FEATURES, "errors": ERRORS, "model": MODEL},
        contents=executed.files,
        classifier=executed.classifier,
        config=config.to_dict(),
        versions=versions(spark_version),
    )


def pca_record(plan: RunPlan, reduction: Reduction) -> PcaRecord:
    applied, config = plan.applied, plan.config
    return PcaRecord(
        k=reduction.k,
        k_requested=None if applied else config.k,
        variance_target=None if config.k or applied else config.variance,
        variance_kept=reduction.variance_kept,
        fit_rows=reduction.fit_rows,
        explained_variance=reduction.explained_variance,
        fitted_by={"run_id": applied.run_id, "output": applied.uri} if applied else None,
    )


def versions(spark_version: str) -> dict[str, str]:
    return {
        "fruits": __version__,
        "python": platform.python_version(),
        "spark": spark_version,
        **installed_versions("tensorflow-cpu", "tensorflow", "keras", "numpy", "pillow", "pyarrow", "pandas"),
    }
