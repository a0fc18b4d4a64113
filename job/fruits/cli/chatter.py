"""A quiet terminal for `fruitsctl run`: what Spark, the JVM, TensorFlow, absl, XNNPACK and
Keras print goes to a log file; fruitsctl's own progress, summary and errors keep the terminal.

The chatter comes from other processes (the JVM, Spark's Python workers) and from C++ code in
this one, all writing to file descriptors 1 and 2, so those are what is redirected, before the
JVM starts (children inherit them). fruitsctl's consoles write to copies of the terminal's
descriptors taken first.
"""

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fruits.cli.console import console, error_console
from fruits.settings.errors import UserError

LOG_DIR_ENV = "FRUITS_LOG_DIR"


def log_path(run_id: str) -> Path:
    """Where a local run's Spark and TensorFlow messages go: $FRUITS_LOG_DIR, else
    ~/.cache/fruits/logs, one file per run (next to, not in, the output: the output's folder
    holds only what the job wrote)."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path.home() / ".cache" / "fruits" / "logs")
    return folder / f"{run_id}.log"


def _terminal_copy(stream, fd: int):
    """A stream on a copy of `fd` if `stream` writes to it (a real terminal or pipe); else the
    stream itself (a test runner's buffer, which the redirection does not touch)."""
    try:
        if stream.fileno() == fd:
            return os.fdopen(os.dup(fd), "w", buffering=1, encoding=stream.encoding or "utf-8", errors="replace")
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    return stream


@contextmanager
def chatter_to(log: Path) -> Iterator[Path]:
    """Within the block, descriptors 1 and 2 write to `log` (created 0600: it may quote paths
    and settings); fruitsctl's consoles still write to the terminal."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        raise UserError(
            f"Cannot write the run's log file {log} ({exc.strerror or exc}): set {LOG_DIR_ENV} to a "
            "writable folder, or pass --verbose to see Spark's messages on the terminal instead."
        ) from None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    terminal_out, terminal_err = _terminal_copy(sys.stdout, 1), _terminal_copy(sys.stderr, 2)
    saved = os.dup(1), os.dup(2)
    console.file, error_console.file = terminal_out, terminal_err
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield log
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        # rich's setter is typed IO[str], but None is what restores the default stream
        console.file, error_console.file = None, None  # type: ignore[assignment]
        for stream in (terminal_out, terminal_err):
            if stream not in (sys.stdout, sys.stderr):
                stream.close()
