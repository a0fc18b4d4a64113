"""The one exception type that means "the user got something wrong".

Entry points (the CLI and the spark-submit entry point) print its message as a single
sentence and exit non-zero; anything else is a bug and keeps its traceback.
"""

from collections.abc import Iterator
from contextlib import contextmanager

# Exit codes shared by every entry point.
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


class StorageError(UserError):
    """A UserError whose cause is the storage (the endpoint, its permissions, the network),
    not the input or the options: run metrics and alerts tell the two apart."""


# A marker that survives the trip from a Python worker, through the JVM, back to the
# driver inside a Py4J stack trace: workers raise UserError with it, the driver finds it.
WORKER_ERROR_MARKER = "FRUITS_USER_ERROR::"
STORAGE_KIND = "storage::"  # after the marker: the driver raises a StorageError


def worker_user_error(message: str, storage: bool = False) -> UserError:
    if storage:
        return StorageError(f"{WORKER_ERROR_MARKER}{STORAGE_KIND}{message}::END")
    return UserError(f"{WORKER_ERROR_MARKER}{message}::END")


def find_worker_user_error(text: str) -> str | None:
    """The user-facing message a worker embedded in an exception text, if any."""
    start = text.find(WORKER_ERROR_MARKER)
    if start < 0:
        return None
    start += len(WORKER_ERROR_MARKER)
    end = text.find("::END", start)
    return text[start : end if end >= 0 else None].strip()


@contextmanager
def worker_errors_as_user_errors() -> Iterator[None]:
    """Turn a user error raised inside a Spark task back into a plain UserError on the driver."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        message = find_worker_user_error(str(exc))
        if message is None:
            raise
        if message.startswith(STORAGE_KIND):
            raise StorageError(message[len(STORAGE_KIND) :]) from None
        raise UserError(message) from None
