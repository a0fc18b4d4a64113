"""What a run takes from an earlier, finished run: the feature rows of the images unchanged
since then (--incremental-from), and the fitted scaler + PCA (--reuse-model, --apply-model).

An image is unchanged when its path, size and modification time are those recorded in
the earlier run's feature rows: a rewritten file gets a new time (on S3, a new
LastModified with every PUT). Images that failed before are tried again; images no longer
in the input are left out. Features are only reused between runs with the same backbone
settings (SETTINGS): anything else would mix vectors of different spaces.

The fit needs the moments of every row. A run saves the moments of its rows with its model
(model/moments.npz), so an incremental run takes the rows it drops (changed or gone) out of
them and adds its new rows: its cost grows with what changed, not with what it reuses. A
previous run that fitted on a sample (--fit-fraction) saved the moments of the sample
only: then the kept rows are tallied again. The projection writes the kept rows into the
new output, read from the previous run's files, so the new output is complete on its own.
"""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from fruits.fit.tally import PartitionTally, RunTally, stats_file
from fruits.ingest.listing import Listing
from fruits.io.output import FEATURES, MODEL, MOMENTS_FILE
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store, storage_errors_as_user_errors
from fruits.io.vectors import from_arrow
from fruits.runs.finished_run import SETTINGS, FinishedRun, open_finished_run, other_settings
from fruits.settings.config import DEFAULTS, JobConfig, flag
from fruits.settings.errors import UserError
from fruits.write.projection import RowSource

_IDENTITY_COLUMNS = ["path", "size", "modified"]


def with_applied_settings(config: JobConfig) -> JobConfig:
    """For --apply-model RUN: this config with RUN's backbone settings, which its model was
    fitted on. A setting given explicitly (not the default) that differs is refused."""
    if not config.apply_model:
        return config
    s3 = S3Settings.of(config)
    with storage_errors_as_user_errors(config.apply_model, s3, doing="read the run to apply"):
        run = open_finished_run(config.apply_model, s3, "--apply-model")
    changes = {}
    for name in SETTINGS:
        theirs, ours = run.setting(name), getattr(config, name)
        if theirs is None or theirs == ours:
            continue
        if ours != getattr(DEFAULTS, name):
            raise UserError(
                f"{flag(name)} {ours} differs from the {theirs} of the run whose model "
                f"is applied ({config.apply_model!r}): its PCA only fits features made with its "
                "settings; leave the option out."
            )
        changes[name] = theirs
    return dataclasses.replace(config, **changes) if changes else config


def check_same_space(config: JobConfig, run: FinishedRun, option: str) -> None:
    differing = other_settings(config, run)
    if differing:
        name = differing[0]
        raise UserError(
            f"{option} {run.uri!r} was made with {flag(name)} {run.setting(name)}, this run "
            f"uses {getattr(config, name)}: features of different settings cannot be mixed; use that "
            f"run's settings, or run without {option} for a full run."
        )


def check_same_model(run: FinishedRun, digest: str | None, option: str) -> None:
    """Refuse features of the same settings made by another converted model: a TensorFlow
    version or calibration photos of their own make another space (slightly, but silently)."""
    theirs = run.model_sha256
    if theirs and digest and theirs != digest:
        raise UserError(
            f"{option} {run.uri!r} was featurized by another {run.setting('precision')} backbone model (SHA-256 "
            f"{theirs[:12]}, this installation's is {digest[:12]}: another TensorFlow version or calibration set "
            f"converted it), so its features are another space; run with the image or version that made it, "
            f"or without {option} for a full run."
        )


@dataclass
class ReusePlan:
    """Which images go through the CNN and which rows come from the previous run."""

    previous: FinishedRun
    featurize: Listing  # new and changed images (and those that failed before)
    reuse: dict[str, list[int]] = field(default_factory=dict)  # previous features file -> its rows to keep
    drop: dict[str, list[int]] = field(default_factory=dict)  # previous features file -> its rows left out
    reused: int = 0
    changed: int = 0
    removed: int = 0

    def sources(self, first_partition: int) -> dict[int, RowSource]:
        """The kept rows as the projection's sources (fruits.write.projection): one per
        previous features file, numbered from `first_partition`."""
        return self._by_file(self.reuse, first_partition)

    def dropped_sources(self) -> dict[int, RowSource]:
        """The previous run's rows left out (changed or gone), in the same form."""
        return self._by_file(self.drop, 0)

    def _by_file(self, rows_by_file: dict[str, list[int]], first: int) -> dict[int, RowSource]:
        return {
            first + i: RowSource(self.previous.store, f"{FEATURES}/{name}", rows)
            for i, (name, rows) in enumerate(sorted(rows_by_file.items()))
        }

    def summary(self) -> dict:
        return {
            "previous_run_id": self.previous.run_id,
            "previous_output": self.previous.uri,
            "reused": self.reused,
            "featurized": len(self.featurize.paths),
            "changed": self.changed,
            "removed": self.removed,
        }


def plan_reuse(listing: Listing, previous: FinishedRun) -> ReusePlan:
    """Compare the input's files with the previous run's feature rows (path, size, time)."""
    known: dict[str, tuple[int, int, str, int] | None] = {}  # path -> (size, modified µs, file, row)
    for name in previous.store.files(FEATURES):
        if not name.endswith(".parquet") or name.startswith(("_", ".")):
            continue
        with previous.store.parquet_file(f"{FEATURES}/{name}") as parquet:
            if "modified" not in parquet.schema_arrow.names:
                raise UserError(
                    f"--incremental-from {previous.uri!r} was made by an older version of the job, "
                    "whose rows do not record the files' sizes and times: run once without "
                    "--incremental-from."
                )
            table = parquet.read(columns=_IDENTITY_COLUMNS)
        modified = pc.cast(table.column("modified"), pa.int64()).to_pylist()
        for row, (path, size, time) in enumerate(
            zip(table.column("path").to_pylist(), table.column("size").to_pylist(), modified)
        ):
            known[path] = (size, time, name, row)
    plan = ReusePlan(previous, Listing(problems=listing.problems, skipped=listing.skipped))
    todo, seen = [], 0
    for index, (path, size, time) in enumerate(zip(listing.paths, listing.sizes, listing.modified)):
        before = known.get(path)
        if before is None:
            todo.append(index)
            continue
        seen += 1
        if before[:2] == (size, time):
            plan.reuse.setdefault(before[2], []).append(before[3])
            plan.reused += 1
            known[path] = None  # kept
        else:
            plan.changed += 1
            todo.append(index)
    for before in known.values():
        if before is not None:
            plan.drop.setdefault(before[2], []).append(before[3])
    plan.featurize = listing.subset(todo, listing.problems, listing.skipped)
    plan.removed = len(known) - seen
    return plan


def saved_tally(run: FinishedRun) -> RunTally | None:
    """The moments of all of `run`'s rows as it saved them, or None: an older run saved none,
    and a run fitted on a sample saved the sample's."""
    if (run.setting("fit_fraction") or 1.0) < 1.0:
        return None
    try:
        tally = RunTally.from_bytes(run.store.read_bytes(f"{MODEL}/{MOMENTS_FILE}"))
    except (FileNotFoundError, KeyError, ValueError):
        return None
    return tally if tally.ok == (run.manifest.get("counts") or {}).get("ok") else None


@dataclass(frozen=True)
class TallySources:
    """The task that tallies rows of a previous run: for each (partition, source) it is given,
    the tally of the source's rows, written as `folder`/stats-NNNNN.npz in `store`, as a
    featurize task writes its own; yields the partitions done."""

    fit_fraction: float
    seed: int
    store: Store
    folder: str

    def __call__(self, chosen: Iterator[tuple[int, RowSource]]) -> Iterator[int]:
        for partition, source in chosen:
            kept = source.store.read_table(source.file, columns=["label", "split", "features"]).take(source.rows)
            tally = PartitionTally(partition, self.fit_fraction, self.seed)
            tally.add(
                kept.column("label").to_pylist(),
                kept.column("split").to_pylist(),
                from_arrow(kept.column("features")),
                0,
            )
            self.store.write_bytes(f"{self.folder}/{stats_file(partition)}", tally.result().to_bytes())
            yield partition


def tally_rows(spark, sources: dict[int, RowSource], task: TallySources) -> None:
    """Spark stage: one TallySources task per source."""
    if sources:
        spark.sparkContext.parallelize(sorted(sources.items()), len(sources)).mapPartitions(task).collect()
