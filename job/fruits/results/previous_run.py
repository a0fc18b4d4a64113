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
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fruits.settings.config import DEFAULTS, JobConfig
from fruits.settings.errors import UserError
from fruits.io.ingest import Listing
from fruits.io.output import FEATURES, MANIFEST, MODEL, MOMENTS_FILE, same_place
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store, storage_errors_as_user_errors
from fruits.fit.tally import PartitionTally, RunTally, stats_file
from fruits.io.vectors import from_arrow

SETTINGS = ("model", "weights", "image_size", "runtime")  # what makes two runs' features the same space
_IDENTITY_COLUMNS = ["path", "size", "modified"]


@dataclass(frozen=True)
class PreviousRun:
    uri: str  # its output, as the user spelt it (latest: resolved)
    store: Store
    manifest: dict

    @property
    def run_id(self) -> str:
        return self.manifest.get("run_id", "?")

    def setting(self, name: str):
        return (self.manifest.get("config") or {}).get(name)


def _manifest_at(store: Store) -> dict | None:
    """A finished run's manifest under `store`, None when there is none (unfinished, or not a run)."""
    try:
        manifest = json.loads(store.read_bytes(MANIFEST))
    except (FileNotFoundError, ValueError):
        return None
    except OSError as exc:  # pyarrow spells some missing S3 keys as a generic error
        if "NoSuchKey" in str(exc) or "not found" in str(exc).lower() or "Path does not exist" in str(exc):
            return None
        raise
    return manifest if isinstance(manifest, dict) and str(manifest.get("format", "")).startswith("fruits-run/") \
        else None


def finished_run(uri: str, s3: S3Settings, option: str) -> PreviousRun:
    """The finished run at `uri`, or a UserError naming what is wrong with it for `option`."""
    store = Store.at(uri, s3)
    if store.kind() == pafs.FileType.NotFound:
        raise UserError(f"{option} {uri!r} does not exist: give the output folder (or s3a:// prefix) of a "
                        "finished run.")
    manifest = _manifest_at(store)
    if manifest is None:
        raise UserError(f"{option} {uri!r} holds no finished run (no {MANIFEST}: the run did not finish, or this "
                        "is not a run's output); give a finished run's output.")
    return PreviousRun(uri.rstrip("/"), store, manifest)


def latest_run(prefix: str, config: JobConfig, s3: S3Settings, exclude: Store | None,
               warnings: list[str] | None = None) -> PreviousRun | None:
    """The finished run under `prefix` made with this run's backbone settings that finished
    last (by its manifest), leaving out `exclude` (this run's own output); None when there is
    none yet. Newer runs made with other settings are passed over, with a warning: a schedule
    whose settings were changed starts a new chain instead of failing every night."""
    parent = Store.at(prefix, s3)
    found, other_settings = [], []
    for name, kind in parent.children().items():
        if kind != pafs.FileType.Directory or name.startswith(("_", ".")):
            continue
        child = Store.at(f"{prefix.rstrip('/')}/{name}", s3)
        if exclude is not None and same_place(child, exclude):
            continue
        manifest = _manifest_at(child)
        if manifest is None:
            continue
        candidate = PreviousRun(f"{prefix.rstrip('/')}/{name}", child, manifest)
        if _other_settings(config, candidate):
            other_settings.append((_finished(manifest), name))
        else:
            found.append((_finished(manifest), name, candidate))
    latest = max(found, key=lambda item: item[:2]) if found else None
    newer = [name for finished, name in sorted(other_settings) if latest is None or (finished, name) > latest[:2]]
    if newer and warnings is not None:
        warnings.append(f"Passed over {len(newer)} newer run(s) under {prefix!r} made with other model settings "
                        f"({', '.join(newer[-3:])}): their features are another space.")
    return latest[2] if latest else None


def _finished(manifest: dict) -> dt.datetime:
    """When the run finished (its manifest's finished_at), for ordering runs."""
    try:
        return dt.datetime.fromisoformat(manifest["finished_at"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _other_settings(config: JobConfig, run: "PreviousRun") -> list[str]:
    """The backbone settings in which `run` differs from `config`."""
    return [name for name in SETTINGS if run.setting(name) != getattr(config, name)]


def with_applied_settings(config: JobConfig) -> JobConfig:
    """For --apply-model RUN: this config with RUN's backbone settings, which its model was
    fitted on. A setting given explicitly (not the default) that differs is refused."""
    if not config.apply_model:
        return config
    s3 = S3Settings.of(config)
    with storage_errors_as_user_errors(config.apply_model, s3, doing="read the run to apply"):
        run = finished_run(config.apply_model, s3, "--apply-model")
    changes = {}
    for name in SETTINGS:
        theirs, ours = run.setting(name), getattr(config, name)
        if theirs is None or theirs == ours:
            continue
        if ours != getattr(DEFAULTS, name):
            raise UserError(f"--{name.replace('_', '-')} {ours} differs from the {theirs} of the run whose model "
                            f"is applied ({config.apply_model!r}): its PCA only fits features made with its "
                            "settings; leave the option out.")
        changes[name] = theirs
    return dataclasses.replace(config, **changes) if changes else config


def check_same_space(config: JobConfig, run: PreviousRun, option: str) -> None:
    differing = _other_settings(config, run)
    if differing:
        name = differing[0]
        raise UserError(f"{option} {run.uri!r} was made with --{name.replace('_', '-')} {run.setting(name)}, this run "
                        f"uses {getattr(config, name)}: features of different settings cannot be mixed; use that "
                        f"run's settings, or run without {option} for a full run.")


@dataclass
class ReusePlan:
    """Which images go through the CNN and which rows come from the previous run."""
    previous: PreviousRun
    featurize: Listing  # new and changed images (and those that failed before)
    reuse: dict[str, list[int]] = field(default_factory=dict)  # previous features file -> its rows to keep
    drop: dict[str, list[int]] = field(default_factory=dict)  # previous features file -> its rows left out
    reused: int = 0
    changed: int = 0
    removed: int = 0

    def sources(self, first_partition: int) -> dict[int, tuple[Store, str, list[int]]]:
        """The kept rows as the projection's sources (fruits.fit.reduce.project_rows): one per
        previous features file, numbered from `first_partition`."""
        return self._by_file(self.reuse, first_partition)

    def dropped_sources(self) -> dict[int, tuple[Store, str, list[int]]]:
        """The previous run's rows left out (changed or gone), in the same form."""
        return self._by_file(self.drop, 0)

    def _by_file(self, rows_by_file: dict[str, list[int]], first: int) -> dict[int, tuple[Store, str, list[int]]]:
        return {first + i: (self.previous.store, f"{FEATURES}/{name}", rows)
                for i, (name, rows) in enumerate(sorted(rows_by_file.items()))}

    def summary(self) -> dict:
        return {"previous_run_id": self.previous.run_id, "previous_output": self.previous.uri,
                "reused": self.reused, "featurized": len(self.featurize.paths), "changed": self.changed,
                "removed": self.removed}


def plan_reuse(listing: Listing, previous: PreviousRun) -> ReusePlan:
    """Compare the input's files with the previous run's feature rows (path, size, time)."""
    known: dict[str, tuple[int, int, str, int] | None] = {}  # path -> (size, modified µs, file, row)
    for name in previous.store.files(FEATURES):
        if not name.endswith(".parquet") or name.startswith(("_", ".")):
            continue
        with previous.store.filesystem.open_input_file(previous.store.path(f"{FEATURES}/{name}")) as handle:
            parquet = pq.ParquetFile(handle)
            if "modified" not in parquet.schema_arrow.names:
                raise UserError(f"--incremental-from {previous.uri!r} was made by an older version of the job, "
                                "whose rows do not record the files' sizes and times: run once without "
                                "--incremental-from.")
            table = parquet.read(columns=_IDENTITY_COLUMNS)
        modified = pc.cast(table.column("modified"), pa.int64()).to_pylist()
        for row, (path, size, time) in enumerate(zip(table.column("path").to_pylist(),
                                                     table.column("size").to_pylist(), modified)):
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
    for path, before in known.items():
        if before is not None:
            plan.drop.setdefault(before[2], []).append(before[3])
    plan.featurize = listing.subset(todo, listing.problems, listing.skipped)
    plan.removed = len(known) - seen
    return plan


def saved_tally(run: PreviousRun) -> RunTally | None:
    """The moments of all of `run`'s rows as it saved them, or None: an older run saved none,
    and a run fitted on a sample saved the sample's."""
    if (run.setting("fit_fraction") or 1.0) < 1.0:
        return None
    try:
        tally = RunTally.from_bytes(run.store.read_bytes(f"{MODEL}/{MOMENTS_FILE}"))
    except (FileNotFoundError, KeyError, ValueError):
        return None
    return tally if tally.ok == (run.manifest.get("counts") or {}).get("ok") else None


def tally_rows(spark, sources: dict[int, tuple[Store, str, list[int]]], config: JobConfig, store: Store,
               folder: str) -> None:
    """Spark stage: the tally of each source's rows (a previous run's file and rows in it),
    written as folder/stats-NNNNN.npz in `store`, as a featurize task writes its own."""

    def tally_files(chosen: Iterator[tuple[int, tuple[Store, str, list[int]]]]) -> Iterator[int]:
        for partition, (source, relative, rows) in chosen:
            with source.filesystem.open_input_file(source.path(relative)) as handle:
                kept = pq.read_table(handle, columns=["label", "split", "features"]).take(rows)
            tally = PartitionTally(partition, config.fit_fraction, config.seed)
            tally.add(kept.column("label").to_pylist(), kept.column("split").to_pylist(),
                      from_arrow(kept.column("features")), 0)
            store.write_bytes(f"{folder}/{stats_file(partition)}", tally.result().to_bytes())
            yield partition

    if sources:
        spark.sparkContext.parallelize(sorted(sources.items()), len(sources)).mapPartitions(tally_files).collect()
