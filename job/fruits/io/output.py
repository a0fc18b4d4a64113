"""The output folder of a run, the rule that only a manifest makes it complete, and the rule
that a run deletes only what a run wrote.

Layout under OUTPUT (a folder or an s3a:// prefix):
    features/        Parquet: path, label, split, size, modified, features, pca (part-NNNNN.parquet,
                     one per task)
    errors/          Parquet: path, label, split, error (files that could not be read or decoded)
    _staging/        features before the PCA is fitted (removed before the manifest)
    model/           Spark ML PipelineModel (StandardScaler + PCA), and moments.npz: the
                     moments of the features of all rows, which an incremental run updates
    manifest.json    written last: its presence is what says the run finished
    _RUN_IN_PROGRESS marker present while a run writes (removed after the manifest)

Nothing else is ever deleted: an output folder that holds any other entry is refused,
with or without --overwrite, and so is an output that overlaps the input.
"""

import datetime as dt
import json
import os

import pyarrow as pa
import pyarrow.fs as pafs

from fruits.io.storage import TEMPORARY_PREFIX, Store
from fruits.settings.errors import UserError

MANIFEST = "manifest.json"
IN_PROGRESS = "_RUN_IN_PROGRESS"
FEATURES, ERRORS, MODEL, STAGED = "features", "errors", "model", "_staging"
MOMENTS_FILE = "moments.npz"  # under MODEL: the moments of all the run's rows, for incremental runs
RUN_ENTRIES = (FEATURES, ERRORS, MODEL, STAGED, MANIFEST, IN_PROGRESS)  # all a run writes at the top

_DESCRIBED = [("path", pa.string()), ("label", pa.string()), ("split", pa.string())]
# The file's identity when it was read (its size in bytes, its modification time): an
# incremental run reuses a row only for a file whose path, size and time are unchanged.
# Microseconds: Spark reads no nanosecond timestamps from Parquet.
_IDENTITY = [("size", pa.int64()), ("modified", pa.timestamp("us", tz="UTC"))]
LISTED_SCHEMA = pa.schema([*_DESCRIBED, *_IDENTITY])
STAGED_SCHEMA = pa.schema([*_DESCRIBED, *_IDENTITY, ("features", pa.list_(pa.float32()))])
FEATURES_SCHEMA = pa.schema([*STAGED_SCHEMA, ("pca", pa.list_(pa.float32()))])
ERROR_SCHEMA = pa.schema([*_DESCRIBED, ("error", pa.string())])


def part_file(partition: int) -> str:
    """The one file name of a Spark partition's rows: a retried task replaces its own file."""
    return f"part-{partition:05d}.parquet"


def is_run_entry(name: str) -> bool:
    """A top-level entry a run writes: its folders and markers, or a marker being committed."""
    if name in RUN_ENTRIES:
        return True
    committed_as = name.split("-", 2)[-1] if name.startswith(TEMPORARY_PREFIX) else None
    return committed_as in (MANIFEST, IN_PROGRESS)


def _location(store: Store) -> tuple[str, tuple[str, ...]]:
    """Where a store's root is, comparable across spellings: local real path, or S3 bucket+key
    (s3://, s3a:// and s3n:// name the same objects)."""
    if store.is_local:
        return "file", tuple(part for part in os.path.realpath(store.root).split("/") if part)
    return "s3", tuple(part for part in store.root.split("/") if part)


def same_place(one: Store, other: Store) -> bool:
    return _location(one) == _location(other)


def check_separate(input_store: Store, output_store: Store, shown: tuple[str, str] | None = None) -> None:
    """Refuse an output that is, contains or lies inside the input, before anything is touched:
    the job would read its own results, or --overwrite would delete the images. `shown`:
    (input, output) as the user spelt them."""
    (in_kind, source), (out_kind, target) = _location(input_store), _location(output_store)
    if in_kind != out_kind:
        return
    relation = (
        "is the input"
        if source == target
        else "lies inside the input"
        if target[: len(source)] == source
        else "contains the input"
        if source[: len(target)] == target
        else None
    )
    if relation:
        shown_input, shown_output = shown or (input_store.uri, output_store.uri)
        raise UserError(
            f"--output {shown_output!r} {relation} {shown_input!r}: the job would read its own "
            "results or delete images; choose an --output outside the input."
        )


class RunOutput:
    def __init__(self, store: Store, shown: str | None = None):
        self.store = store
        self.uri = (shown or store.uri).rstrip("/")  # as the user spelt it
        self.created = False

    def child(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def claim(self, run_id: str, overwrite: bool, plan: str = "") -> bool:
        """Make the output ours for this run, refusing to replace results the user did not give up.

        A finished run (manifest present) is replaced only with overwrite. A run that died
        (in-progress marker, no manifest) is replaced, so a retried job converges on the
        same final output; when it was this same run (its run id and plan, the fingerprint
        of its input and settings: a retried driver), its finished partitions are kept and
        True is returned. Only a run's own entries are ever deleted: any other entry makes
        the whole output refused, overwrite or not.
        """
        kind = self.store.kind()
        if kind == pafs.FileType.File:
            raise UserError(f"Output {self.uri!r} is a file: give a folder path for --output.")
        children = self.store.children() if kind == pafs.FileType.Directory else {}
        self.created = kind == pafs.FileType.NotFound
        foreign = sorted(name for name in children if not is_run_entry(name))
        if foreign:
            shown = ", ".join(repr(name) for name in foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise UserError(
                f"Output {self.uri!r} holds entries this job did not write ({shown}): the job never "
                "deletes them, with or without --overwrite; choose a new or empty folder for --output."
            )
        if MANIFEST in children and not overwrite:
            raise UserError(
                f"Output {self.uri!r} already holds a finished run: pass --overwrite to replace it, "
                "or choose another --output."
            )
        if children and MANIFEST not in children and IN_PROGRESS not in children:
            raise UserError(
                f"Output {self.uri!r} holds {', '.join(sorted(children))} but no {MANIFEST} or "
                f"{IN_PROGRESS}: not provably a run's output, so the job leaves it alone; "
                "choose another --output, or remove that folder yourself."
            )
        resuming = IN_PROGRESS in children and MANIFEST not in children and self._marker() == (run_id, plan)
        if MANIFEST in children:  # first, so no reader takes the old results for the new
            self.store.delete(MANIFEST)
        kept = {MANIFEST, IN_PROGRESS} | ({STAGED, ERRORS} if resuming else set())
        for name in sorted(set(children) - kept):
            self.store.delete(name)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.store.write_text(
            IN_PROGRESS,
            json.dumps({"run_id": run_id, "plan": plan, "started_at": started, "writes": list(RUN_ENTRIES)}),
        )
        return resuming

    def _marker(self) -> tuple[str | None, str | None]:
        """(run id, plan) of the run that left the in-progress marker, if it says."""
        try:
            marker = json.loads(self.store.read_bytes(IN_PROGRESS))
            return marker.get("run_id"), marker.get("plan")
        except (ValueError, AttributeError):
            return None, None

    def abandon(self) -> None:
        """Remove an output this run created but wrote nothing useful into."""
        if self.created:
            self.store.delete("")

    def complete(self, manifest: dict) -> None:
        """Write the manifest (the last file of a run) and drop the in-progress marker."""
        self.store.write_text(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        self.store.delete(IN_PROGRESS)
