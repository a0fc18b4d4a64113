"""The output folder of a run, the rule that only a manifest makes it complete, and the rule
that a run deletes only what a run wrote.

Layout under OUTPUT (a folder or an s3a:// prefix):
    features/        Parquet: path, label, split, size, modified, features, pca (part-NNNNN.parquet,
                     one per task)
    errors/          Parquet: path, label, split, error (files that could not be read or decoded)
    _staging/RUN_ID/ one run's work before it publishes: staged features, tallies, and its
                     features/, errors/ and model/ (moved into place, then removed)
    model/           Spark ML PipelineModel (StandardScaler + PCA), and moments.npz: the
                     moments of the features of all rows, which an incremental run updates
    manifest.json    written last: its presence is what says the run finished
    _RUN_IN_PROGRESS the claim: which run writes here (run id, heartbeat, lease), created
                     only where none is (atomic), removed after the manifest

Nothing else is ever deleted: an output folder that holds any other entry is refused,
with or without --overwrite, and so is an output that overlaps the input.
"""

import datetime as dt
import json
import os
import socket
import threading
import uuid

import pyarrow as pa
import pyarrow.fs as pafs

from fruits.io.storage import TEMPORARY_PREFIX, Store
from fruits.settings.config import KEPT_LOGS
from fruits.settings.errors import UserError

MANIFEST = "manifest.json"
IN_PROGRESS = "_RUN_IN_PROGRESS"
FEATURES, ERRORS, MODEL, STAGED = "features", "errors", "model", "_staging"
PLAN_FILE = "_PLAN"  # in a run's staging folder: the plan its staged partitions belong to
MOMENTS_FILE = "moments.npz"  # under MODEL: the moments of all the run's rows, for incremental runs
LOGS = KEPT_LOGS  # the driver's log of every attempt (fruits.write.run_log), kept across reruns
RUN_ENTRIES = (FEATURES, ERRORS, MODEL, STAGED, MANIFEST, IN_PROGRESS, LOGS)  # all a run writes at the top

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


def lease_seconds() -> float:
    """How long a claim outlives its writer's last heartbeat ($FRUITS_OUTPUT_LEASE_S, default
    120 s): long enough for a driver that is busy or paused for a minute, short enough that a
    dead run's output is free again soon. A retried driver of the same run never waits."""
    return float(os.environ.get("FRUITS_OUTPUT_LEASE_S", "120"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _age_s(stamp: object) -> float | None:
    """Seconds since an ISO time, None if it is not one."""
    try:
        return (_now() - dt.datetime.fromisoformat(str(stamp))).total_seconds()
    except ValueError:
        return None


def staging_of(run_id: str) -> str:
    """A run's own staging folder: no run reads or replaces another's parts or tallies."""
    return f"{STAGED}/{run_id.replace('/', '_')}"


class RunOutput:
    """One run's hold on its output: claimed atomically (one writer per output), everything
    written under the run's own staging folder, published into features/, errors/ and model/
    only while the claim is still this run's, the manifest last."""

    def __init__(self, store: Store, shown: str | None = None):
        self.store = store
        self.uri = (shown or store.uri).rstrip("/")  # as the user spelt it
        self.created = False
        self.run_id = ""
        self.staging = STAGED
        self._token = ""
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    def child(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def claim(self, run_id: str, overwrite: bool, plan: str = "") -> bool:
        """Make the output this run's, refusing to replace results the user did not give up.

        A finished run (manifest present) is replaced only with overwrite, and only when the
        new one publishes: until then it stays readable. Another run holding the output (its
        claim's heartbeat younger than the lease) is refused in one sentence; a dead run's
        claim is taken over. A retried driver of this run (same run id) takes its claim back
        and, when its plan (the fingerprint of its input and settings) is the same, keeps its
        finished partitions: True is returned. Any entry a run does not write makes the whole
        output refused, overwrite or not.
        """
        self._check_entries(overwrite)
        self.run_id, self.staging = run_id, staging_of(run_id)
        self._acquire(run_id)
        resuming = self._staged_plan() == plan and bool(plan)
        for name, kind in self.store.children(STAGED).items():  # dead runs' leftovers, and ours if not resumed
            if f"{STAGED}/{name}" != self.staging or not resuming:
                self.store.delete(f"{STAGED}/{name}") if kind == pafs.FileType.File else self.store.delete_dir(
                    f"{STAGED}/{name}"
                )
        if not resuming:
            self.store.write_text(f"{self.staging}/{PLAN_FILE}", plan)
        return resuming

    def _check_entries(self, overwrite: bool) -> None:
        kind = self.store.kind()
        self.created = kind == pafs.FileType.NotFound
        if kind == pafs.FileType.File:
            raise UserError(f"Output {self.uri!r} is a file: give a folder path for --output.")
        children = self.store.children() if kind == pafs.FileType.Directory else {}
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
        if children and not {MANIFEST, IN_PROGRESS, STAGED, LOGS} & set(children):
            raise UserError(
                f"Output {self.uri!r} holds {', '.join(sorted(children))} but no {MANIFEST} or "
                f"{IN_PROGRESS}: not provably a run's output, so the job leaves it alone; "
                "choose another --output, or remove that folder yourself."
            )

    def _acquire(self, run_id: str) -> None:
        """The claim, created only where none is (atomic), taken over from a dead run or from
        an earlier driver of this run, else refused naming the run that holds it."""
        self._token = uuid.uuid4().hex
        for _ in range(3):
            if self.store.create_exclusive(IN_PROGRESS, self._claim_record()):
                self._start_heartbeat()
                return
            holder = self._read_claim()
            if holder is None:
                continue  # released in between: try again
            age = _age_s(holder.get("heartbeat_at"))
            if holder.get("run_id") == run_id or age is None or age > holder.get("lease_s", lease_seconds()):
                if self._read_claim() == holder:  # still the one judged: not another run's new claim
                    self.store.delete(IN_PROGRESS)
                continue
            raise UserError(
                f"Output {self.uri!r} is being written by run {holder.get('run_id')!r} (since "
                f"{holder.get('started_at')}, last heartbeat {age:.0f} s ago): two runs never write one "
                "output; wait for that run to end, or choose another --output (a run that died frees it "
                f"{holder.get('lease_s', lease_seconds()):.0f} s after its last heartbeat)."
            )
        raise UserError(f"Output {self.uri!r} is being claimed by other runs at this moment: choose another --output.")

    def _claim_record(self, started_at: str | None = None) -> bytes:
        now = _now().isoformat(timespec="milliseconds")
        record = {
            "run_id": self.run_id,
            "token": self._token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at or now,
            "heartbeat_at": now,
            "lease_s": lease_seconds(),
            "writes": list(RUN_ENTRIES),
        }
        return json.dumps(record).encode()

    def _read_claim(self) -> dict | None:
        try:
            record = json.loads(self.store.read_bytes(IN_PROGRESS))
        except (FileNotFoundError, ValueError):
            return None
        except OSError as exc:  # pyarrow spells a missing S3 key as a generic error
            if "NoSuchKey" in str(exc) or "not found" in str(exc).lower():
                return None
            raise
        return record if isinstance(record, dict) else {}

    def holds_claim(self) -> bool:
        holder = self._read_claim()
        return holder is not None and holder.get("token") == self._token

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        started = _now().isoformat(timespec="milliseconds")

        def beat() -> None:
            while not self._stop.wait(lease_seconds() / 4):
                try:
                    if not self.holds_claim():
                        return  # taken over: complete() will refuse to publish
                    self.store.write_bytes(IN_PROGRESS, self._claim_record(started))
                except Exception:  # a missed beat is retried; the lease allows several
                    continue

        self._heartbeat = threading.Thread(target=beat, name="output-claim-heartbeat", daemon=True)
        self._heartbeat.start()

    def _staged_plan(self) -> str | None:
        try:
            return self.store.read_bytes(f"{self.staging}/{PLAN_FILE}").decode()
        except (FileNotFoundError, OSError, ValueError):
            return None

    def publish(self, hashes: dict[str, str]) -> dict[str, dict]:
        """Replace the output's results with this run's staged ones (the old manifest first,
        so no reader takes a mix for a finished run); returns every result file with its size,
        modification time and SHA-256 (`hashes` as the writers computed them, the rest read
        here: errors and model files are small), for the manifest."""
        if not self.holds_claim():
            raise UserError(
                f"Run {self.run_id!r} lost its claim on {self.uri!r} (its heartbeat stopped for longer than the "
                "lease, and another run took the output over): nothing was published; rerun it to another --output."
            )
        self.store.delete(MANIFEST)
        for name in (FEATURES, ERRORS, MODEL):
            self.store.delete(name)
            if self.store.kind(f"{self.staging}/{name}") == pafs.FileType.Directory:
                self.store.move_dir(f"{self.staging}/{name}", name)
        self.store.delete_dir(self.staging)
        if not self.store.children(STAGED):
            self.store.delete(STAGED)
        return {
            path: {"bytes": size, "modified_ns": modified, "sha256": hashes.get(path) or self.store.sha256(path)}
            for name in (FEATURES, ERRORS, MODEL)
            for path, (size, modified) in sorted(self.store.file_list(name).items())
        }

    def complete(self, manifest: dict) -> None:
        """Write the manifest (the last file of a run) and release the claim."""
        self.store.write_text(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        self.release()

    def release(self) -> None:
        """Stop the heartbeat and give the claim up, if it is still this run's."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        if self._token and self.holds_claim():
            self.store.delete(IN_PROGRESS)
        self._token = ""

    def abandon(self, keep_staging: bool = False) -> None:
        """After a failure: this run's staging folder removed (unless kept for a reason the
        user is told), the claim released, and an output this run created left out entirely
        when nothing else is in it."""
        try:
            if not keep_staging:
                self.store.delete_dir(self.staging)
                if not self.store.children(STAGED):
                    self.store.delete(STAGED)
            self.release()
            if self.created and not self.store.children():
                self.store.delete("")
        except Exception:  # the run's own failure is what the user needs to see
            pass
