"""What a SparkApplication's status says, and the exit codes fruitsctl derives from it."""

import datetime as dt
from collections import Counter

# The spark-operator ends an application in COMPLETED or FAILED only: SUBMISSION_FAILED goes
# back to PENDING_RERUN while onSubmissionFailureRetries last, then to FAILED (the state
# machine of internal/controller/sparkapplication/controller.go, v2.5.2).
FINAL_STATES = ("COMPLETED", "FAILED")
EXIT_COMPLETED, EXIT_FAILED, EXIT_NEVER_SUBMITTED, EXIT_TIMEOUT = 0, 3, 4, 5


def state(app: dict) -> str:
    return ((app.get("status") or {}).get("applicationState") or {}).get("state") or "NEW"


def has_status(app: dict) -> bool:
    """Whether an operator has picked the application up at all."""
    return bool(((app.get("status") or {}).get("applicationState") or {}).get("state"))


def is_final(app: dict) -> bool:
    return state(app) in FINAL_STATES


def exit_code(app: dict) -> int:
    """0 COMPLETED; 3 FAILED; 4 FAILED without ever starting a driver (every submission failed)."""
    if state(app) == "COMPLETED":
        return EXIT_COMPLETED
    submissions, executions = attempts(app)
    return EXIT_NEVER_SUBMITTED if submissions and not executions else EXIT_FAILED


def error_message(app: dict) -> str:
    return ((app.get("status") or {}).get("applicationState") or {}).get("errorMessage") or ""


def driver_pod(app: dict) -> str | None:
    return ((app.get("status") or {}).get("driverInfo") or {}).get("podName")


def spark_app_id(app: dict) -> str | None:
    """Spark's id of the application's latest driver (its event log's name), once one started."""
    return (app.get("status") or {}).get("sparkApplicationId") or None


def ui_address(app: dict) -> str | None:
    info = (app.get("status") or {}).get("driverInfo") or {}
    return info.get("webUIAddress") or (
        f"{info['webUIServiceName']}:{info.get('webUIPort', 4040)}" if info.get("webUIServiceName") else None
    )


def executor_counts(app: dict) -> Counter:
    return Counter(((app.get("status") or {}).get("executorState") or {}).values())


def attempts(app: dict) -> tuple[int, int]:
    status = app.get("status") or {}
    return status.get("submissionAttempts", 0), status.get("executionAttempts", 0)


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def age_and_duration(app: dict, now: dt.datetime | None = None) -> tuple[str, str]:
    now = now or dt.datetime.now(dt.UTC)
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
