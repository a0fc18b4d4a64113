"""The SparkApplication for a run, built from JobConfig + ClusterConfig (the chart renders
the same object from the same settings)."""

import copy
from typing import Any

from fruits import __version__
from fruits.cluster.api_errors import GROUP, VERSION
from fruits.cluster.cluster_config import JOB_FILE, PROMETHEUS_SPARK_CONF, SPARK_UID, ClusterConfig, spark_version
from fruits.settings.config import DEFAULTS, JobConfig, new_run_id
from fruits.settings.options import arguments_for

API_VERSION = f"{GROUP}/{VERSION}"
APP_LABEL = "app.kubernetes.io/name"
APP_NAME = "fruits-pipeline"
RUN_LABEL = "fruits.io/run"


def new_app_name() -> str:
    return f"fruits-{new_run_id()}"  # a DNS-1035 label: starts with a letter


def labels_for(name: str, cluster: ClusterConfig, managed_by: str) -> dict[str, str]:
    return {
        APP_LABEL: APP_NAME,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "featurize",
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/managed-by": managed_by,
        RUN_LABEL: name,
        **cluster.labels,
    }


def security_contexts() -> dict:
    """Pod Security Standards "restricted": the non-root Spark user, no privilege escalation, no
    capabilities, the runtime's seccomp profile; and a read-only root filesystem (the pods
    write to their /tmp and Spark local directory volumes only)."""
    return {
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": SPARK_UID,
            "runAsGroup": SPARK_UID,
            "fsGroup": SPARK_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SPARK_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


# The writable places of a pod whose root filesystem is read-only. Spark uses volumes named
# spark-local-dir-* as its local directories (spills, shuffle, downloaded files).
SCRATCH_MOUNTS = {"tmp": "/tmp", "spark-local-dir-1": "/var/data/spark-local-dir-1"}


def scratch_volumes(cluster: ClusterConfig) -> list[dict]:
    sizes = {"tmp": cluster.tmp_size, "spark-local-dir-1": cluster.local_dir_size}
    return [{"name": name, "emptyDir": {"sizeLimit": sizes[name]}} for name in SCRATCH_MOUNTS]


def spark_conf_for(cluster: ClusterConfig) -> dict[str, str]:
    from fruits.spark_session import JOB_SPARK_CONF  # when a manifest is built: fruitsctl starts without it

    conf = dict(JOB_SPARK_CONF)
    if cluster.event_log_dir:
        conf.update(
            {
                "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": cluster.event_log_dir,
                "spark.eventLog.rolling.enabled": "true",
                "spark.eventLog.rolling.maxFileSize": cluster.event_log_max_file_size,
            }
        )
    if cluster.prometheus_metrics:
        conf.update(PROMETHEUS_SPARK_CONF)
    return {**conf, **cluster.spark_conf}


def tolerations(taints: dict[str, str]) -> list[dict[str, str]]:
    """Kubernetes tolerations from TAINT_KEY=VALUE:EFFECT items, in key order (as the chart's)."""
    found = []
    for key in sorted(taints):
        value, _, effect = taints[key].partition(":")
        toleration = {"key": key, "operator": "Equal" if value else "Exists"}
        toleration.update({"value": value} if value else {})
        toleration.update({"effect": effect} if effect else {})
        found.append(toleration)
    return found


def preferred_nodes(labels: dict[str, str]) -> dict:
    """A node affinity that prefers (never requires) nodes with these labels: KEY=V1,V2."""
    expressions = [{"key": key, "operator": "In", "values": labels[key].split(",")} for key in sorted(labels)]
    term = {"weight": 100, "preference": {"matchExpressions": expressions}}
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}


def placement(cluster: ClusterConfig, role: str) -> dict[str, Any]:
    """The role's node selector, tolerations, affinity, annotations, env and priority class,
    only those given (the chart renders the same keys in the same cases)."""
    field = {name: getattr(cluster, f"{role}_{name}") for name in ("node_selector", "tolerations", "preferred_nodes")}
    extra = {name: getattr(cluster, f"{role}_{name}") for name in ("annotations", "env", "priority_class")}
    spec: dict[str, Any] = {}
    if field["node_selector"]:
        spec["nodeSelector"] = dict(sorted(field["node_selector"].items()))
    if field["tolerations"]:
        spec["tolerations"] = tolerations(field["tolerations"])
    if field["preferred_nodes"]:
        spec["affinity"] = preferred_nodes(field["preferred_nodes"])
    if extra["annotations"]:
        spec["annotations"] = dict(sorted(extra["annotations"].items()))
    if extra["env"]:
        spec["env"] = [{"name": name, "value": extra["env"][name]} for name in sorted(extra["env"])]
    if extra["priority_class"]:
        spec["priorityClassName"] = extra["priority_class"]
    return spec


def scheduling(cluster: ClusterConfig) -> dict[str, Any]:
    """Dynamic allocation and a batch scheduler, when asked for."""
    spec: dict[str, Any] = {}
    if cluster.dynamic_allocation:
        sizes = {"initialExecutors": cluster.initial_executors, "minExecutors": cluster.min_executors}
        sizes["maxExecutors"] = cluster.max_executors
        # no external shuffle service on Kubernetes: shuffle tracking keeps an executor holding shuffle data
        spec["dynamicAllocation"] = {
            "enabled": True,
            **{k: v for k, v in sizes.items() if v is not None},
            "shuffleTrackingEnabled": True,
        }
    if cluster.batch_scheduler:
        spec["batchScheduler"] = cluster.batch_scheduler
        options = {"queue": cluster.batch_queue, "priorityClassName": cluster.batch_priority_class}
        if any(options.values()):
            spec["batchSchedulerOptions"] = {k: v for k, v in options.items() if v}
    return spec


def camel(name: str) -> str:
    """A settings field as a chart value key: image_size -> imageSize."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def job_arguments(job: JobConfig, name: str) -> list[str]:
    """Every job option that has a value, sorted by its chart key (Helm ranges over maps in
    key order): a manifest states the whole configuration it runs, and the chart's
    template can produce the identical list."""
    values = job.to_dict()
    if values["run_id"] is None:
        values["run_id"] = name
    if values["k"] is not None:  # k replaces the variance target
        values["variance"] = None
    return arguments_for({field: values[field] for field in sorted(values, key=camel)})


def serves_without_tensorflow(job: JobConfig) -> bool:
    """Whether the default (lean) image runs these settings: LiteRT and the models it bakes,
    the default backbone at the default size with ImageNet weights (images/Dockerfile)."""
    baked = (DEFAULTS.backbone, DEFAULTS.image_size, "imagenet")
    return job.runtime == "tflite" and (job.backbone, job.image_size, job.weights) == baked


def image_for(job: JobConfig, cluster: ClusterConfig) -> str:
    """The image a run of `job` needs (the chart's "fruits.image" picks the same)."""
    if serves_without_tensorflow(job):
        return cluster.image
    return cluster.tf_image or f"{cluster.image}-tf"


def spark_application(
    job: JobConfig, cluster: ClusterConfig, name: str | None = None, managed_by: str = "fruitsctl"
) -> dict:
    name = name or cluster.name or new_app_name()
    labels = labels_for(name, cluster, managed_by)
    pod = {
        "labels": dict(labels),
        **security_contexts(),
        "volumeMounts": [{"name": volume, "mountPath": path} for volume, path in SCRATCH_MOUNTS.items()],
    }
    if cluster.s3_secret:
        pod["envFrom"] = [{"secretRef": {"name": cluster.s3_secret}}]
    spec: dict[str, Any] = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": image_for(job, cluster),
        "imagePullPolicy": cluster.image_pull_policy,
        "mainApplicationFile": JOB_FILE,
        "arguments": job_arguments(job, name),
        "sparkVersion": spark_version(),
        "sparkConf": spark_conf_for(cluster),
        "restartPolicy": {
            "type": "OnFailure",
            "onFailureRetries": cluster.retries,
            "onFailureRetryInterval": cluster.retry_interval,
            "onSubmissionFailureRetries": cluster.retries,
            "onSubmissionFailureRetryInterval": cluster.retry_interval,
        },
        "volumes": scratch_volumes(cluster),
        "driver": {
            "cores": cluster.driver_cores,
            "coreLimit": str(cluster.driver_cores),
            "memory": cluster.driver_memory,
            "memoryOverhead": cluster.driver_memory_overhead,
            "serviceAccount": cluster.service_account,
            **copy.deepcopy(pod),
            **placement(cluster, "driver"),
        },
        "executor": {
            "instances": cluster.executors,
            "cores": cluster.executor_cores,
            "coreLimit": str(cluster.executor_cores),
            "memory": cluster.executor_memory,
            "memoryOverhead": cluster.executor_memory_overhead,
            "serviceAccount": cluster.executor_service_account,
            **copy.deepcopy(pod),
            **placement(cluster, "executor"),
        },
        **scheduling(cluster),
    }
    if cluster.executor_grace_seconds:
        spec["executor"]["terminationGracePeriodSeconds"] = cluster.executor_grace_seconds
    if cluster.ttl_seconds:
        spec["timeToLiveSeconds"] = cluster.ttl_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": spec,
    }
