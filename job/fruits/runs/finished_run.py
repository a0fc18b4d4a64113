"""A finished run: an output folder (or S3 prefix) whose manifest says the run finished.

One type for every reader of earlier runs: `--incremental-from`, `--reuse-model`,
`--apply-model`, `transform`, and the results commands (fruits.results.run_results adds
the tables). A run's manifest records the backbone settings (SETTINGS) its features were
made with: two runs' features are one space only when those agree.
"""

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow.fs as pafs

from fruits.io.output import MANIFEST, same_place
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.write.manifest import upgraded

SETTINGS = ("backbone", "weights", "image_size", "runtime", "precision")  # what makes two runs' features the same space


@dataclass(frozen=True)
class FinishedRun:
    """A run that finished: where it is, and its manifest (in the current format)."""

    uri: str  # its output, as the user spelt it (latest: resolved)
    store: Store
    manifest: dict

    @property
    def run_id(self) -> str:
        return self.manifest.get("run_id", "?")

    def setting(self, name: str):
        return (self.manifest.get("config") or {}).get(name)

    @property
    def model_sha256(self) -> str | None:
        """The content hash of the TFLite backbone its features came from (None: --runtime tf, or
        a run from before models were hashed)."""
        return (self.manifest.get("backbone") or {}).get("model_sha256")


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
    if not isinstance(manifest, dict) or not str(manifest.get("format", "")).startswith("fruits-run/"):
        return None
    return upgraded(manifest)


def open_finished_run(uri: str, s3: S3Settings, option: str) -> FinishedRun:
    """The finished run at `uri`, or a UserError naming what is wrong with it for `option`."""
    store = Store.at(uri, s3)
    if store.kind() == pafs.FileType.NotFound:
        raise UserError(
            f"{option} {uri!r} does not exist: give the output folder (or s3a:// prefix) of a finished run."
        )
    manifest = _manifest_at(store)
    if manifest is None:
        raise UserError(
            f"{option} {uri!r} holds no finished run (no {MANIFEST}: the run did not finish, or this "
            "is not a run's output); give a finished run's output."
        )
    run = FinishedRun(uri.rstrip("/"), store, manifest)
    verify(run, option)
    return run


RESULT_FOLDERS = ("features", "errors", "model")


def changes_since_finished(run: FinishedRun) -> list[str]:
    """How the run's result files differ from what its manifest recorded when it finished:
    each file deleted, added, or rewritten. Empty for an unchanged run, and for a run whose
    manifest recorded no files (an older version's)."""
    recorded = run.manifest.get("contents")
    if not isinstance(recorded, dict):
        return []
    found = {path: info for folder in RESULT_FOLDERS for path, info in run.store.file_list(folder).items()}
    changes = [f"{path} deleted" for path in sorted(set(recorded) - set(found))]
    changes += [f"{path} added" for path in sorted(set(found) - set(recorded))]
    changes += [
        f"{path} rewritten"
        for path in sorted(set(found) & set(recorded))
        if _rewritten(run.store, path, found[path], recorded[path])
    ]
    return changes


def _rewritten(store: Store, path: str, found: tuple[int, int], recorded: dict) -> bool:
    """Another size, or another time and content (a copy of the run has new times only: its
    content is hashed then, and compared with the hash recorded)."""
    size, modified = found
    if size != recorded.get("bytes"):
        return True
    if modified == recorded.get("modified_ns"):
        return False
    return store.sha256(path) != recorded.get("sha256")


def verify(run: FinishedRun, option: str) -> None:
    """Refuse, in one sentence, a run whose files changed since it finished: its rows, model
    and manifest would no longer agree."""
    changes = changes_since_finished(run)
    if changes:
        shown = ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")
        raise UserError(
            f"{option} {run.uri!r} changed after its run finished ({shown}): its files no longer match its "
            "manifest; rerun it (or restore its files), or give another run."
        )


def latest_run(
    prefix: str, config: JobConfig, s3: S3Settings, exclude: Store | None, warnings: list[str] | None = None
) -> FinishedRun | None:
    """The finished run under `prefix` made with this run's backbone settings that finished
    last (by its manifest), leaving out `exclude` (this run's own output); None when there is
    none yet. Newer runs made with other settings are passed over, with a warning: a schedule
    whose settings were changed starts a new chain instead of failing every night."""
    parent = Store.at(prefix, s3)
    found: list[tuple[dt.datetime, str, FinishedRun]] = []
    passed_over: list[tuple[dt.datetime, str]] = []  # runs made with other settings
    for name, kind in parent.children().items():
        if kind != pafs.FileType.Directory or name.startswith(("_", ".")):
            continue
        child = Store.at(f"{prefix.rstrip('/')}/{name}", s3)
        if exclude is not None and same_place(child, exclude):
            continue
        manifest = _manifest_at(child)
        if manifest is None:
            continue
        candidate = FinishedRun(f"{prefix.rstrip('/')}/{name}", child, manifest)
        if other_settings(config, candidate):
            passed_over.append((_finished(manifest), name))
        else:
            found.append((_finished(manifest), name, candidate))
    latest = max(found, key=lambda item: item[:2]) if found else None
    newer = [name for finished, name in sorted(passed_over) if latest is None or (finished, name) > latest[:2]]
    if newer and warnings is not None:
        warnings.append(
            f"Passed over {len(newer)} newer run(s) under {prefix!r} made with other backbone settings "
            f"({', '.join(newer[-3:])}): their features are another space."
        )
    if latest is None:
        return None
    verify(latest[2], "--incremental-from latest:")
    return latest[2]


def _finished(manifest: dict) -> dt.datetime:
    """When the run finished (its manifest's finished_at), for ordering runs."""
    try:
        return dt.datetime.fromisoformat(manifest["finished_at"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def other_settings(config: JobConfig, run: FinishedRun) -> list[str]:
    """The backbone settings in which `run` differs from `config`."""
    return [name for name in SETTINGS if run.setting(name) != getattr(config, name)]
