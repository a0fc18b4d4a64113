"""Record: the driver's log kept with the output (`_logs/`), secrets redacted, so that a failed
night's cause outlives the pods that printed it.

Every run that claimed its output keeps one file per attempt, finished or failed (a retried
driver adds its own), ending with the error that stopped it. A run refused before it claims
its output (a missing input, an output that is not its own) keeps nothing there.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TextIO

from fruits.io.output import LOGS
from fruits.io.storage import Store
from fruits.settings.errors import UserError

SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # their values never reach a kept log
# key=value and key: value spellings of secret settings (fs.s3a.secret.key, aws_session_token ...)
SECRET_SETTING = re.compile(
    r"((?:secret|session)[._-]?(?:access[._-]?)?(?:key|token)['\"]?\s*[=:]\s*['\"]?)[^\s'\",]+", re.I
)


def redact(text: str) -> str:
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return SECRET_SETTING.sub(r"\1***", text)


class DriverLog(Protocol):
    def text(self) -> str: ...


class FileLog:
    """A log another part already writes to a file (fruitsctl run's Spark and TensorFlow messages)."""

    def __init__(self, path: Path):
        self.path = path

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


class _Tee(io.TextIOBase):
    def __init__(self, stream: TextIO, copy: io.StringIO):
        self.stream, self.copy = stream, copy

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()


class TeeLog:
    """What the driver's Python prints (the job's messages, warnings, errors and tracebacks,
    with the JVM's exception text), copied while it still goes to the pod's log."""

    def __init__(self) -> None:
        self._copy = io.StringIO()

    def text(self) -> str:
        return self._copy.getvalue()

    @contextmanager
    def capturing(self) -> Iterator[TeeLog]:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, self._copy), _Tee(sys.stderr, self._copy)
        try:
            yield self
        finally:
            sys.stdout, sys.stderr = saved


def ending(exc: BaseException | None) -> str:
    """The last lines of a kept log: how the attempt ended."""
    if exc is None:
        return "Run complete.\n"
    if isinstance(exc, UserError):
        return f"Error: {exc}\n"
    return "".join(traceback.format_exception(exc))


class KeptLog:
    """The file under `_logs/` this attempt of a run keeps its log in."""

    def __init__(self, log: DriverLog, store: Store, run_id: str):
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.log, self.store, self.name = log, store, f"{LOGS}/{run_id}-{stamp}-driver.log"

    def keep(self, exc: BaseException | None) -> None:
        """Write the log so far and how the attempt ended; a failure to do so is one warning."""
        try:
            self.store.write_text(self.name, redact(self.log.text() + ending(exc)))
        except Exception as problem:  # the run's own outcome is what matters
            print(f"Warning: could not keep the driver log as {self.name}: {problem}", file=sys.stderr, flush=True)
