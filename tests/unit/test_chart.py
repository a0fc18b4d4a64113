"""The Helm chart, rendered by Helm's own engine (helm-python-sdk): lint, schema, objects, contracts."""

import copy
from pathlib import Path

import pytest
import yaml
from helm_python import Chart, HelmError, lint
from kubernetes_validate import validate as validate_core

from fruits.cluster.cluster_config import CLUSTER_FIELDS, ClusterConfig, spark_version
from fruits.cluster.spark_application import camel, spark_application
from fruits.settings.config import FIELDS, JobConfig, build_config
from fruits.spark_session import JOB_SPARK_CONF
from support.chart_render import CHART, render
from support.crd_schema import validate

ROOT = Path(__file__).resolve().parents[2]
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BASE = {"job": {"input": "s3a://fruits/in", "output": "s3a://fruits/out"}}
CHART_ONLY_CLUSTER = {"name", "namespace"}  # the release gives these


@pytest.fixture(scope="module")
def chart():
    return Chart.load(str(CHART))


def ci_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_is_clean(values_file):
    result = lint(str(CHART), ci_values(values_file), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []  # info only ("icon is recommended")


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_every_rendered_object_is_valid(chart, values_file):
    objects = render(chart, ci_values(values_file))
    spark = objects.get("SparkApplication", []) + objects.get("ScheduledSparkApplication", [])
    assert len(spark) == 1
    validate(spark[0])
    assert [len(objects[kind]) for kind in ("ServiceAccount", "Role", "RoleBinding")] == [2, 1, 1]
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        for document in objects[kind]:
            validate_core(document, "1.31.0", strict=True)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"job": {"imageSize": "big"}}, "imageSize"),
        ({"job": {"colour": "red"}}, "colour"),
        ({"job": {"backbone": "alexnet"}}, "backbone"),
        ({"cluster": {"executors": 0}}, "executors"),
        ({"cluster": {"executorMemory": "lots"}}, "executorMemory"),
        ({"cluster": {"sparkConf": {"spark.x": 1}}}, "sparkConf"),
        ({"serviceAccount": {"iamRoleArn": "my-role"}}, "iamRoleArn"),
        ({"concurrencyPolicy": "Sometimes"}, "concurrencyPolicy"),
        ({"unknownTopLevel": True}, "unknownTopLevel"),
    ],
)
def test_the_schema_rejects_wrong_types_and_unknown_keys(chart, bad, message):
    values = copy.deepcopy(BASE)
    for key, value in bad.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(HelmError, match=message):
        chart.render(values, name="fruits", namespace="ml")


@pytest.mark.parametrize(
    "values, message",
    [
        ({}, "job.input and job.output are required"),
        ({"job": {"input": "s3a://b/in", "output": "s3a://b/out"}, "schedule": "0 3 * * *"}, "must contain {run_id}"),
        (
            {"job": {"input": "s3a://b/in", "output": "s3a://b/out", "s3Credentials": "static"}},
            "static needs cluster.s3Secret",
        ),
        (
            {"job": {"input": "s3a://b/in", "output": "s3a://b/out"}, "fullnameOverride": "2024-run"},
            "not a DNS-1035 label",
        ),
        (
            {
                "job": {"input": "s3a://b/in", "output": "s3a://b/o-{run_id}", "s3Credentials": "static"},
                "schedule": "@daily",
            },
            "static needs cluster.s3Secret",
        ),
    ],
)
def test_required_values_fail_with_a_message(chart, values, message):
    with pytest.raises(HelmError, match=message):
        chart.render(values, name="fruits", namespace="ml")


def test_irsa_service_accounts_and_secret_free_pods_on_eks(chart):
    objects = render(chart, ci_values(CHART / "ci" / "eks-values.yaml"))
    accounts = {a["metadata"]["name"]: a for a in objects["ServiceAccount"]}
    spec = objects["SparkApplication"][0]["spec"]
    driver, executor = accounts[spec["driver"]["serviceAccount"]], accounts[spec["executor"]["serviceAccount"]]
    assert driver is not executor
    for account in (driver, executor):  # both reach S3 through the role
        assert account["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/fruits-pipeline-s3"
        }
    assert driver["automountServiceAccountToken"] is True  # it runs its executor pods
    assert executor["automountServiceAccountToken"] is False  # no Kubernetes API token in a pod that parses JPEGs
    assert "envFrom" not in spec["driver"]
    arguments = spec["arguments"]
    assert arguments[arguments.index("--s3-credentials") + 1] == "irsa"
    assert spec["sparkConf"]["spark.eventLog.dir"] == "s3a://fruits-data/spark-events"


def test_minikube_reads_static_keys_from_a_secret(chart):
    spec = render(chart, ci_values(CHART / "ci" / "minikube-values.yaml"))["SparkApplication"][0]["spec"]
    for pod in (spec["driver"], spec["executor"]):
        assert pod["envFrom"] == [{"secretRef": {"name": "minio-credentials"}}]
    assert "--s3-path-style" in spec["arguments"] and spec["imagePullPolicy"] == "Never"
    for account in render(chart, ci_values(CHART / "ci" / "minikube-values.yaml"))["ServiceAccount"]:
        assert "annotations" not in account["metadata"]


# Each verb the driver's Role grants, and the Spark 3.5 call that needs it
# (resource-managers/kubernetes/core/.../KubernetesClusterSchedulerBackend, ExecutorPodsAllocator,
# ExecutorPodsWatchSnapshotSource, ExecutorPodsPollingSnapshotSource, ExecutorPodsLifecycleManager).
DRIVER_VERBS = {
    ("pods", "create"): "ExecutorPodsAllocator creates the executor pods",
    ("pods", "get"): "ExecutorPodsAllocator reads the driver's own pod (owner of the executors)",
    ("pods", "list"): "ExecutorPodsPollingSnapshotSource lists the executors; doKillExecutors finds running ones",
    ("pods", "watch"): "ExecutorPodsWatchSnapshotSource watches the executors",
    ("pods", "patch"): "executor-id and decommissioning labels on executor pods",
    ("pods", "delete"): "ExecutorPodsLifecycleManager deletes a finished or failed executor",
    ("pods", "deletecollection"): "stop() and doKillExecutors delete the executors by label",
    ("configmaps", "create"): "setUpExecutorConfigMap: the executors' Spark conf",
    ("configmaps", "delete"): "the executors' conf map, by name",
    ("configmaps", "deletecollection"): "stop() deletes the executors' conf map by label",
    ("services", "delete"): "the driver's service, by name",
    ("services", "deletecollection"): "stop() deletes the driver's service by label (deleteOnTermination)",
}


def test_rbac_grants_the_driver_exactly_the_verbs_spark_uses(chart):
    objects = render(chart, BASE)
    assert "ClusterRole" not in objects and "ClusterRoleBinding" not in objects
    (role,) = objects["Role"]
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    assert granted == set(DRIVER_VERBS)
    (binding,) = objects["RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fruits-spark", "namespace": "ml"}
    ]  # not executors
    assert render(
        chart,
        {**BASE, "rbac": {"create": False}, "serviceAccount": {"create": False}, "networkPolicy": {"create": False}},
    ).keys() == {"SparkApplication"}


def test_only_the_runs_own_pods_may_connect_to_its_pods(chart):
    objects = render(chart, BASE)
    (policy,) = objects["NetworkPolicy"]
    validate_core(policy, "1.31.0", strict=True)
    pods = objects["SparkApplication"][0]["spec"]["driver"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pods.items() and policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": selector}}]}]


def restricted_violations(spec: dict, pod: dict) -> list[str]:
    """The Pod Security Standards "restricted" profile (Kubernetes 1.31), field by field, as
    the operator turns the SparkApplication's pod settings into a pod."""
    context, pod_context = pod.get("securityContext", {}), pod.get("podSecurityContext", {})
    found = []
    if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
        found.append("runAsNonRoot must be true")
    if 0 in (context.get("runAsUser"), pod_context.get("runAsUser")):
        found.append("runAsUser must not be 0")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation must be false")
    if context.get("capabilities", {}).get("drop") != ["ALL"] or context.get("capabilities", {}).get("add"):
        found.append("capabilities must drop ALL and add none")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        found.append("seccompProfile must be RuntimeDefault or Localhost")
    if context.get("privileged"):
        found.append("privileged must not be true")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= {
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        }:
            found.append(f"volume {volume['name']} of kind {kinds} is not allowed")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        found.append("host namespaces are not allowed")
    return found


@pytest.mark.parametrize("values_file", sorted((CHART / "ci").glob("*values.yaml")), ids=lambda p: p.name)
def test_pods_pass_the_restricted_profile_with_a_read_only_root(chart, values_file):
    objects = render(chart, ci_values(values_file))
    spec = (objects.get("SparkApplication") or [{}])[0].get("spec") or objects["ScheduledSparkApplication"][0]["spec"][
        "template"
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for pod in (spec["driver"], spec["executor"]):
        assert restricted_violations(spec, pod) == []
        assert pod["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in pod["volumeMounts"]}
        assert mounts["/tmp"] == "tmp" and "spark-local-dir-1" in mounts.values()  # the writable places
        for name in mounts.values():
            assert volumes[name]["emptyDir"]["sizeLimit"]
    assert spec["restartPolicy"]["type"] == "OnFailure" and spec["restartPolicy"]["onFailureRetries"] == 2


def test_the_restricted_check_can_fail():
    assert (
        restricted_violations(
            {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, {"securityContext": {"privileged": True}}
        )
        != []
    )


def test_a_schedule_renders_a_scheduled_application_with_a_fresh_run_id_per_run(chart):
    objects = render(chart, ci_values(CHART / "ci" / "scheduled-values.yaml"))
    assert "SparkApplication" not in objects
    (scheduled,) = objects["ScheduledSparkApplication"]
    assert scheduled["spec"]["schedule"] == "0 3 * * *" and scheduled["spec"]["concurrencyPolicy"] == "Forbid"
    arguments = scheduled["spec"]["template"]["arguments"]
    assert "--run-id" not in arguments
    assert arguments[arguments.index("--output") + 1] == "s3a://fruits-data/runs/nightly-{run_id}"
    # each night reuses the features of the newest finished night under runs/
    assert arguments[arguments.index("--incremental-from") + 1] == "latest:s3a://fruits-data/runs"


def test_chart_defaults_are_the_cli_defaults():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    job_defaults = {camel(name): getattr(JobConfig(), name) for name in FIELDS}
    job_defaults["overwrite"] = True  # the one documented difference: a chart-managed application's output is its own
    assert values["job"] == job_defaults
    cluster = ClusterConfig()
    cluster_defaults = {
        camel(name): getattr(cluster, name) for name in CLUSTER_FIELDS if name not in CHART_ONLY_CLUSTER
    }
    cluster_defaults["sparkConf"] = JOB_SPARK_CONF  # the chart shows the base conf the CLI adds
    assert values["cluster"] == cluster_defaults
    assert values["sparkVersion"] == spark_version()


def settings_to_values(job: dict, cluster: dict) -> dict:
    chart_cluster = {camel(k): v for k, v in cluster.items() if k not in CHART_ONLY_CLUSTER}
    if "spark_conf" in cluster:
        chart_cluster["sparkConf"] = {**JOB_SPARK_CONF, **cluster["spark_conf"]}
    job = {"overwrite": False, **job}  # the CLI's default, stated (the chart's is true)
    return {"job": {camel(k): v for k, v in job.items()}, "cluster": chart_cluster}


@pytest.mark.parametrize(
    "job, cluster",
    [
        ({"input": "s3a://b/in", "output": "s3a://b/out"}, {}),
        (
            {
                "input": "s3a://b/in",
                "output": "s3a://b/out",
                "k": 40,
                "image_size": 96,
                "fit_fraction": 0.25,
                "s3_endpoint": "http://minio:9000",
                "s3_path_style": True,
                "s3_credentials": "static",
                "overwrite": True,
            },
            {
                "executors": 5,
                "executor_cores": 2,
                "executor_memory": "3g",
                "s3_secret": "keys",
                "retries": 4,
                "event_log_dir": "s3a://b/events",
                "ttl_seconds": 3600,
                "spark_conf": {"spark.x": "1"},
                "labels": {"team": "vision"},
                "image": "registry.example/fruits:2",
                "service_account": "runner",
            },
        ),
        (
            {
                "input": "s3a://b/in",
                "output": "s3a://b/out",
                "variance": 0.8,
                "backbone": "resnet50",
                "run_id": "fixed",
            },
            {"image_pull_policy": "Always", "driver_memory": "4g"},
        ),
    ],
)
def test_the_chart_renders_exactly_what_fruitsctl_render_prints(chart, job, cluster):
    rendered = render(chart, settings_to_values(job, cluster), name="fr1", namespace="ml")["SparkApplication"][0]
    expected = spark_application(
        build_config(job),
        ClusterConfig(**{**cluster, "namespace": "ml"}),
        name="fr1-fruits-pipeline",
        managed_by="Helm",
    )
    assert rendered == expected
