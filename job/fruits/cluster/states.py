"""What a SparkApplication's status says, and the exit codes fruitsctl derives from it."""

import datetime as dt
from collections import Counter

# Final states and fruitsctl's exit code for each; every other state is still moving.
EXIT_CODES = {"COMPLETED": 0, "FAILED": 3, "SUBMISSION_FAILED": 4}
EXIT_TIMEOUT = 5


def state(app: dict) -> str:
    return ((app.get("status") or {}).get("applicationState") or {}).get("state") or "NEW"


def is_final(app: dict) -> bool:
    return state(app) in EXIT_CODES


def error_message(app: dict) -> str:
    return ((app.get("status") or {}).get("applicationState") or {}).get("errorMessage") or ""


def driver_pod(app: dict) -> str | None:
    return ((app.get("status") or {}).get("driverInfo") or {}).get("podName")


def ui_address(app: dict) -> str | None:
    info = (app.get("status") or {}).get("driverInfo") or {}
    return info.get("webUIAddress") or (f"{info['webUIServiceName']}:{info.get('webUIPort', 4040)}"
                                        if info.get("webUIServiceName") else None)


def executor_counts(app: dict) -> Counter:
    return Counter(((app.get("status") or {}).get("executorState") or {}).values())


def attempts(app: dict) -> tuple[int, int]:
    status = app.get("status") or {}
    return status.get("submissionAttempts", 0), status.get("executionAttempts", 0)


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def age_and_duration(app: dict, now: dt.datetime | None = None) -> tuple[str, str]:
    now = now or dt.datetime.now(dt.timezone.utc)
    created = _time(app.get("metadata", {}).get("creationTimestamp"))
    status = app.get("status") or {}
    started, ended = _time(status.get("lastSubmissionAttemptTime")), _time(status.get("terminationTime"))
    age = human(now - created) if created else "?"
    duration = human((ended or now) - started) if started else "-"
    return age, duration


def human(delta: dt.timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
