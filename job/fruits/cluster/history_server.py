"""The chart's Spark History Server as fruitsctl finds it: its Service's labels and the log
directory it names (templates/historyserver.yaml sets both; a test holds them equal), and the
page of one application on it."""

from fruits.cluster.spark_application import APP_LABEL, APP_NAME

COMPONENT = "history-server"
SELECTOR = f"{APP_LABEL}={APP_NAME},app.kubernetes.io/component={COMPONENT}"
LOG_DIRECTORY_ANNOTATION = "fruits.io/log-directory"


def _directory(uri: str) -> str:
    return uri.rstrip("/")


def event_log_dir(app: dict) -> str | None:
    """Where a SparkApplication's driver wrote its event log, or None when it wrote none."""
    conf = (app.get("spec") or {}).get("sparkConf") or {}
    if str(conf.get("spark.eventLog.enabled", "false")).lower() != "true":
        return None
    return conf.get("spark.eventLog.dir") or None


def reading(services: list[dict], log_dir: str) -> list[dict]:
    """The History Server Services whose server reads `log_dir`, by name."""
    found = [
        s
        for s in services
        if _directory(((s.get("metadata") or {}).get("annotations") or {}).get(LOG_DIRECTORY_ANNOTATION, ""))
        == _directory(log_dir)
    ]
    return sorted(found, key=lambda s: s["metadata"]["name"])


def service_port(service: dict) -> int:
    """The Service's port for the UI: the one named http, else its first."""
    ports = (service.get("spec") or {}).get("ports") or []
    if not ports:
        raise ValueError(f"Service {service['metadata']['name']} has no port")
    return int(next((p for p in ports if p.get("name") == "http"), ports[0])["port"])


def application_page(local_port: int, app_id: str) -> str:
    """The History Server's page of one application (an operator run has no attempt id)."""
    return f"http://localhost:{local_port}/history/{app_id}/jobs/"
