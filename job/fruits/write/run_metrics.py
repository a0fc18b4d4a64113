"""Record: the run's metrics, pushed to a Prometheus Pushgateway when it ends (--metrics-url).

One group per job key (the application's name without a schedule's suffix) and output prefix
(the output before `{run_id}`), so a nightly run's series continue from night to night. A
finished run replaces its group (PUT); a failed one updates only the run-level series (POST),
so the last success's timestamp and image counts stay what they were. A Pushgateway that is
down or slow costs the run at most PUSH_TIMEOUT_S and one warning, never its result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fruits.settings.errors import StorageError, UserError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from fruits.write.manifest import Manifest

PUSH_TIMEOUT_S = 3.0
PREFIX = "fruits_"
# spark-operator names a scheduled run `<ScheduledSparkApplication>-<Unix time in ns>`
_SCHEDULED_SUFFIX = re.compile(r"-\d{10,}$")
LOCAL_JOB = "fruits"


def failure_class(exc: BaseException) -> str:
    """What kind of failure ended a run, for alerts and dashboards."""
    if isinstance(exc, StorageError):
        return "storage"  # the S3 endpoint, its permissions or the network
    if isinstance(exc, UserError):
        return "user_error"  # the input or the options: the message says what to change
    return "infrastructure"  # a crash, a lost executor, Spark itself, an interrupt


def job_key(app_name: str | None) -> str:
    """The stable name of a series of runs: the application's name without a scheduled run's
    suffix (every night's run of one ScheduledSparkApplication shares it)."""
    return _SCHEDULED_SUFFIX.sub("", app_name) if app_name else LOCAL_JOB


def output_prefix(output_template: str) -> str:
    """The part of --output that every run of a series shares: before `{run_id}`."""
    return output_template.split("{run_id}", 1)[0].rstrip("/") or output_template


@dataclass(frozen=True)
class MetricsTarget:
    """Where and under which group a run's metrics go."""

    url: str
    job: str
    output: str

    @property
    def grouping_key(self) -> dict[str, str]:
        return {"output": self.output}


def _registry() -> tuple[CollectorRegistry, Any]:
    """A fresh registry and a function adding one gauge sample to it."""
    from prometheus_client import CollectorRegistry, Gauge  # only where metrics are pushed

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, help: str, value: float, **labels: str) -> None:
        if name not in gauges:  # a labelled gauge takes one sample per label value
            gauges[name] = Gauge(PREFIX + name, help, list(labels), registry=registry)
        (gauges[name].labels(**labels) if labels else gauges[name]).set(value)

    return registry, gauge


def success_metrics(target: MetricsTarget, manifest: Manifest, finished: float) -> CollectorRegistry:
    registry, gauge = _registry()
    counts, timings = manifest.counts, manifest.timings_s
    incremental = manifest.incremental or {}
    reused, through_cnn = int(incremental.get("reused", 0)), int(incremental.get("featurized", counts.read))
    gauge("run_success", "1 if the last run finished, 0 if it failed.", 1)
    gauge("run_last_success_timestamp_seconds", "When the last successful run finished (Unix time).", finished)
    gauge("run_info", "The last run (its id is the application's name on Kubernetes).", 1, run_id=manifest.run_id)
    gauge("run_duration_seconds", "Wall time of the last run.", timings.get("total", 0.0))
    for stage, seconds in timings.items():
        if stage != "total":
            gauge("stage_duration_seconds", "Wall time of each stage of the last run.", seconds, stage=stage)
    gauge("images_read", "Files the last run accounted for (images listed plus listing problems).", counts.read)
    gauge("images_ok", "Images of the last run with a feature row.", counts.ok)
    gauge("images_failed", "Images of the last run with an error row (undecodable, unreadable).", counts.failed)
    gauge("images_skipped", "Files the last run skipped (hidden, not images).", sum(counts.skipped.values()))
    gauge("images_reused", "Images whose features the last run reused from the previous run.", reused)
    featurize_s = timings.get("featurize", 0.0)
    rate = through_cnn / featurize_s if featurize_s > 0 else 0.0
    gauge("featurize_images_per_second", "Images through the CNN per second of the featurize stage.", rate)
    gauge(
        "featurize_core_seconds",
        "Core-seconds the featurize tasks used.",
        manifest.cost.get("featurize_core_seconds", 0),
    )
    gauge("pca_components", "PCA components kept (k).", manifest.pca.k)
    gauge("storage_read_retries", "Reads retried after a transient storage fault.", counts.read_retries)
    return registry


def failure_metrics(
    target: MetricsTarget, run_id: str, exc: BaseException, timings: Mapping[str, float], finished: float
) -> CollectorRegistry:
    registry, gauge = _registry()
    gauge("run_success", "1 if the last run finished, 0 if it failed.", 0)
    gauge("run_last_failure_timestamp_seconds", "When the last failed run ended (Unix time).", finished)
    gauge(
        "run_failure", "Why the last run failed: user_error, storage or infrastructure.", 1, reason=failure_class(exc)
    )
    gauge("run_info", "The last run (its id is the application's name on Kubernetes).", 1, run_id=run_id)
    gauge("run_duration_seconds", "Wall time of the last run.", timings.get("total", 0.0))
    return registry


def push(target: MetricsTarget, registry: CollectorRegistry, replace: bool) -> str | None:
    """Push `registry` to the target's group; the reason it failed, or None."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    send = push_to_gateway if replace else pushadd_to_gateway
    try:
        send(target.url, job=target.job, registry=registry, grouping_key=target.grouping_key, timeout=PUSH_TIMEOUT_S)
    except Exception as exc:  # any failure to push is reported, never raised
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def push_warning(target: MetricsTarget, reason: str) -> str:
    return (
        f"Could not push the run's metrics to {target.url} ({reason}); the run's own result is unaffected: "
        "check that the Pushgateway is up and --metrics-url is right."
    )


def push_record(target: MetricsTarget, reason: str | None) -> dict[str, Any]:
    """What the manifest says about the push."""
    return {"url": target.url, "job": target.job, "grouping": target.grouping_key, "pushed": reason is None} | (
        {"error": reason} if reason else {}
    )
