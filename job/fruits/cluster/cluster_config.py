"""Cluster settings of a run, defined once: `fruitsctl render/submit` options, config files
and (through a test that holds them equal) the Helm chart's values."""

import functools
import re
from dataclasses import dataclass

from fruits import __version__, declared_requirements
from fruits.settings.errors import UserError
from fruits.settings.options import fields_of, flag, option


@functools.cache
def spark_version() -> str:
    """The Spark release: pyproject.toml's pyspark pin (images/Dockerfile's base tag must
    match; a test holds them equal), from this package's installed metadata: the cluster
    commands run on the base install, without PySpark itself. Read when a manifest is built."""
    for requirement in declared_requirements():
        if found := re.match(r"pyspark==([^\s;]+)", requirement):
            return found.group(1)
    from importlib import metadata  # a source tree on the path: PySpark is beside it

    return metadata.version("pyspark")


JOB_FILE = "local:///opt/fruits/job/main.py"  # where the image puts job/main.py
SPARK_UID = 185  # the apache/spark image's non-root user
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}  # Spark's byte sizes
# SparkApplication names must be DNS-1035 labels: the operator's webhook refuses others, and
# Spark names the driver's Service after the application (a Service name is a DNS-1035 label).
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


# Spark's own metrics in Prometheus's format on the UI port: the driver's metrics system through a
# PrometheusServlet sink, and the executors' metrics (spark.ui.prometheus.enabled). The chart's
# fruits.sparkSpec sets the same keys (tests/unit/test_chart.py keeps them equal).
PROMETHEUS_SPARK_CONF = {
    "spark.ui.prometheus.enabled": "true",
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus/",
    "spark.metrics.appStatusSource.enabled": "true",  # job, stage and task counts as driver metrics
}
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
UI_PORT = 4040  # the driver's Spark UI: what the NetworkPolicy opens to the monitoring namespace


@dataclass(frozen=True)
class ClusterConfig:
    name: str | None = option(None, "SparkApplication name (default: fruits-<date>-<time>-<random>).")
    namespace: str = option("default", "Kubernetes namespace.", aliases=("-n",))
    image: str = option(
        f"fruits-pipeline:{__version__}",
        "Container image with Spark, LiteRT, the job and the default backbone's converted models (no TensorFlow).",
    )
    tf_image: str | None = option(
        None,
        "The image with TensorFlow, used instead for settings the image above cannot serve (--runtime tf, "
        "another backbone, image size or weights); empty: the image's name with -tf appended.",
    )
    image_pull_policy: str = option("IfNotPresent", "Image pull policy.", choices=("IfNotPresent", "Always", "Never"))
    service_account: str = option(
        "fruits-spark",
        "ServiceAccount of driver and executors (IRSA role on EKS); the chart creates fruits-spark, "
        "the spark-operator's chart creates spark-operator-spark in each namespace it watches.",
    )
    executor_service_account: str = option(
        "fruits-spark-executor",
        "ServiceAccount of the executors: the IRSA role for S3, no Kubernetes API token, "
        "no Role (the chart creates it).",
    )
    executors: int = option(2, "Executor pods.", low=1, high=1000)
    executor_cores: int = option(1, "Cores per executor (= concurrent tasks, each with its own model).", low=1, high=64)
    executor_memory: str = option("2g", "JVM heap per executor.")
    # Per executor core, one Python worker on LiteRT: ~300 MB peak in `make bench` (it was ~1.1 GB
    # with TensorFlow); plus Spark's minimum of 384m for the JVM's own off-heap memory.
    executor_memory_overhead: str = option(
        "768m",
        "Memory beyond the heap per executor: the Python workers "
        "(~400m per core) and the JVM's off-heap memory; raise it with --executor-cores.",
    )
    driver_cores: int = option(1, "Driver cores.", low=1, high=64)
    driver_memory: str = option("2g", "Driver JVM heap (PCA's d x d matrices live here).")
    # The Python driver converts a model the image has not baked (another --backbone or --image-size):
    # ~0.95 GB peak for MobileNetV2 here.
    driver_memory_overhead: str = option(
        "1536m", "Driver memory beyond the heap: the Python driver, which converts a model the image has not baked."
    )
    retries: int = option(
        2, "Retries of a failed run (restartPolicy OnFailure); a retry replaces the partial output.", low=0, high=20
    )
    retry_interval: int = option(30, "Seconds between retries.", low=1, high=86_400)
    tmp_size: str = option("2Gi", "Size limit of each pod's /tmp (an emptyDir: the root filesystem is read-only).")
    local_dir_size: str = option(
        "20Gi", "Size limit of each pod's Spark local directory (an emptyDir: spills, shuffle)."
    )
    s3_secret: str | None = option(
        None, "Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, exposed to the pods (--s3-credentials static)."
    )
    event_log_dir: str | None = option(
        None, "Write Spark event logs here (e.g. s3a://bucket/spark-events) for a History Server."
    )
    # Rolling logs: a long run writes files of this size, not one growing file the History Server
    # parses again whole at each update.
    event_log_max_file_size: str = option(
        "128m", "With --event-log-dir: roll the event log into files of this size (at least 10m)."
    )
    prometheus_metrics: bool = option(
        False,
        "Serve Spark's metrics for Prometheus on the driver's UI port while it runs: the driver's "
        "(/metrics/prometheus/) and every executor's (/metrics/executors/prometheus/).",
    )
    ttl_seconds: int | None = option(
        None, "Delete the SparkApplication this long after it ends.", low=60, high=31_536_000
    )
    spark_conf: dict[str, str] = option({}, "Extra Spark setting.", aliases=("--conf",))
    labels: dict[str, str] = option({}, "Extra label on the SparkApplication and its pods.", aliases=("--label",))
    # Placement, per role: the driver on capacity that stays (on-demand), the executors where
    # they are cheap (spot), as the SparkApplication's driver and executor specs carry it.
    driver_node_selector: dict[str, str] = option({}, "Node label the driver pod must match.")
    driver_tolerations: dict[str, str] = option(
        {},
        "Taint the driver tolerates, as TAINT_KEY=VALUE:EFFECT (VALUE empty: any value; :EFFECT left out: any effect).",
        aliases=("--driver-toleration",),
    )
    driver_preferred_nodes: dict[str, str] = option(
        {}, "Node label the driver prefers, KEY=V1,V2 (node affinity, preferred, not required)."
    )
    driver_annotations: dict[str, str] = option(
        {}, "Annotation on the driver pod (e.g. karpenter.sh/do-not-disrupt=true).", aliases=("--driver-annotation",)
    )
    driver_env: dict[str, str] = option({}, "Environment variable of the driver.")
    driver_priority_class: str | None = option(None, "PriorityClass of the driver pod.")
    executor_node_selector: dict[str, str] = option({}, "Node label the executor pods must match.")
    executor_tolerations: dict[str, str] = option(
        {},
        "Taint the executors tolerate, as TAINT_KEY=VALUE:EFFECT (e.g. karpenter.sh/capacity-type=spot:NoSchedule).",
        aliases=("--executor-toleration",),
    )
    executor_preferred_nodes: dict[str, str] = option(
        {}, "Node label the executors prefer, KEY=V1,V2 (node affinity, preferred, not required)."
    )
    executor_annotations: dict[str, str] = option(
        {}, "Annotation on the executor pods.", aliases=("--executor-annotation",)
    )
    executor_env: dict[str, str] = option({}, "Environment variable of the executors.")
    executor_priority_class: str | None = option(None, "PriorityClass of the executor pods.")
    executor_grace_seconds: int | None = option(
        None,
        "Seconds an executor pod has between SIGTERM and SIGKILL (a spot node gives 120): time to decommission.",
        low=1,
        high=3600,
    )
    # Scheduling
    dynamic_allocation: bool = option(
        False, "Dynamic allocation: executors come and go with the work (shuffle tracking on, no shuffle service)."
    )
    min_executors: int | None = option(None, "With --dynamic-allocation: the fewest executors.", low=0, high=1000)
    initial_executors: int | None = option(
        None, "With --dynamic-allocation: executors to start with.", low=0, high=1000
    )
    max_executors: int | None = option(
        None, "With --dynamic-allocation: the most executors (the job cuts its tasks for these).", low=1, high=1000
    )
    batch_scheduler: str | None = option(
        None, "Batch scheduler for gang scheduling and queues.", choices=("yunikorn", "volcano")
    )
    batch_queue: str | None = option(None, "With --batch-scheduler: the queue.")
    batch_priority_class: str | None = option(None, "With --batch-scheduler: the application's PriorityClass.")

    def __post_init__(self):
        if self.name is not None and not DNS_1035_LABEL.match(self.name):
            raise UserError(
                f"--name {self.name!r} is not a valid SparkApplication name: use at most 63 lower-case "
                "letters, digits and '-', starting with a letter and ending with a letter or digit."
            )
        if not DNS_1035_LABEL.match(self.namespace) and not re.match(
            r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", self.namespace
        ):
            raise UserError(f"--namespace {self.namespace!r} is not a valid namespace name.")
        for size in ("tmp_size", "local_dir_size"):
            if not re.match(r"^[0-9]+(Ki|Mi|Gi|Ti)$", getattr(self, size)):
                raise UserError(
                    f"{flag(size)} must be a Kubernetes quantity such as 512Mi or 2Gi; got {getattr(self, size)!r}."
                )
        for quantity in ("executor_memory", "executor_memory_overhead", "driver_memory", "driver_memory_overhead"):
            if not re.match(r"^[0-9]+[kmgt]?$", getattr(self, quantity)):
                raise UserError(
                    f"{flag(quantity)} must be a Spark memory size such as 512m or 2g; got {getattr(self, quantity)!r}."
                )
        self._check_placement_and_scheduling()
        rolled = re.match(r"^([0-9]+)([kmgt]?)$", self.event_log_max_file_size)
        if not rolled or int(rolled.group(1)) * SIZE_UNITS[rolled.group(2)] < 10 * SIZE_UNITS["m"]:
            raise UserError(  # Spark refuses a smaller one when the SparkContext starts
                f"{flag('event_log_max_file_size')} must be a Spark size of at least 10m, such as 128m or 1g; "
                f"got {self.event_log_max_file_size!r}."
            )

    def _check_placement_and_scheduling(self) -> None:
        for role in ("driver", "executor"):
            for key, spec in getattr(self, f"{role}_tolerations").items():
                if spec.count(":") > 1 or (spec.split(":", 1)[-1] not in TAINT_EFFECTS and ":" in spec):
                    raise UserError(
                        f"--{role}-toleration {key}={spec!r} must be TAINT_KEY=VALUE:EFFECT with EFFECT one of "
                        f"{', '.join(TAINT_EFFECTS)} (e.g. karpenter.sh/capacity-type=spot:NoSchedule)."
                    )
        if (self.batch_queue or self.batch_priority_class) and not self.batch_scheduler:
            raise UserError("--batch-queue and --batch-priority-class need --batch-scheduler yunikorn or volcano.")
        sizes = [getattr(self, n) for n in ("min_executors", "initial_executors", "max_executors")]
        if any(size is not None for size in sizes) and not self.dynamic_allocation:
            raise UserError("--min/--initial/--max-executors need --dynamic-allocation (else give --executors).")
        given = [size for size in sizes if size is not None]
        if given != sorted(given):
            raise UserError("With --dynamic-allocation, --min-executors <= --initial-executors <= --max-executors.")


CLUSTER_FIELDS = fields_of(ClusterConfig)
