"""The Helm chart, rendered by Helm's own engine (helm-python-sdk): lint, schema, objects, contracts."""

import copy
import importlib.util
import zipfile
from pathlib import Path

import pytest
import yaml
from helm_python import Chart, HelmError, lint
from kubernetes_validate import validate as validate_core

from fruits.cluster import history_server
from fruits.cluster.api_errors import matching
from fruits.cluster.cluster_config import CLUSTER_FIELDS, SPARK_UID, ClusterConfig, spark_version
from fruits.cluster.spark_application import camel, spark_application
from fruits.io.s3_settings import PROVIDERS, S3Settings
from fruits.settings.config import FIELDS, JobConfig, build_config
from fruits.spark_session import JOB_SPARK_CONF
from support.chart_render import CHART, render
from support.crd_schema import validate

ROOT = Path(__file__).resolve().parents[2]
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BASE = {"job": {"input": "s3a://fruits/in", "output": "s3a://fruits/out"}}
CHART_ONLY_CLUSTER = {"name", "namespace"}  # the release gives these
CORE_KINDS = ("ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "ConfigMap", "Deployment", "Service")
COMPONENT = "app.kubernetes.io/component"


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
    run_accounts = [a for a in objects["ServiceAccount"] if a["metadata"]["labels"][COMPONENT] == "featurize"]
    assert [len(run_accounts), len(objects["Role"]), len(objects["RoleBinding"])] == [2, 1, 1]
    for kind in CORE_KINDS:
        for document in objects.get(kind, []):
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
        # settings the lean image cannot serve: the image with TensorFlow, derived or given
        ({"input": "s3a://b/in", "output": "s3a://b/out", "runtime": "tf"}, {}),
        ({"input": "s3a://b/in", "output": "s3a://b/out", "image_size": 128}, {"image": "r.example/f:2"}),
        ({"input": "s3a://b/in", "output": "s3a://b/out", "backbone": "resnet50"}, {"tf_image": "r.example/f:tf"}),
        ({"input": "s3a://b/in", "output": "s3a://b/out", "precision": "float32"}, {}),
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
                "metrics_url": "http://pushgateway.monitoring:9091",
                "metrics_job": "nightly",
            },
            {
                "executors": 5,
                "executor_cores": 2,
                "executor_memory": "3g",
                "s3_secret": "keys",
                "retries": 4,
                "event_log_dir": "s3a://b/events",
                "event_log_max_file_size": "256m",
                "prometheus_metrics": True,
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
        (
            {"input": "s3a://b/in", "output": "s3a://b/out"},
            {  # spot executors, an on-demand driver that Karpenter leaves alone, queues, autoscaling
                "driver_node_selector": {"karpenter.sh/capacity-type": "on-demand"},
                "driver_annotations": {"karpenter.sh/do-not-disrupt": "true"},
                "driver_priority_class": "fruits-driver",
                "driver_env": {"TZ": "UTC", "A_FLAG": "1"},
                "executor_node_selector": {"karpenter.sh/capacity-type": "spot", "kubernetes.io/arch": "amd64"},
                "executor_tolerations": {
                    "karpenter.sh/capacity-type": "spot:NoSchedule",
                    "dedicated": "",
                    "gpu": ":NoExecute",
                },
                "executor_preferred_nodes": {"karpenter.k8s.aws/instance-family": "c7i,c6i"},
                "executor_annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"},
                "executor_priority_class": "fruits-batch",
                "executor_grace_seconds": 120,
                "dynamic_allocation": True,
                "min_executors": 0,
                "initial_executors": 2,
                "max_executors": 20,
                "batch_scheduler": "yunikorn",
                "batch_queue": "root.fruits",
                "batch_priority_class": "nightly",
            },
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


def test_the_image_is_the_lean_one_exactly_where_its_baked_models_serve_the_settings(chart):
    def image(job: dict, cluster: dict | None = None) -> str:
        values = settings_to_values({"input": "s3a://b/in", "output": "s3a://b/out", **job}, cluster or {})
        return render(chart, values)["SparkApplication"][0]["spec"]["image"]

    lean = ClusterConfig().image
    assert image({}) == image({"precision": "float32"}) == lean  # both precisions are baked
    for needs_tensorflow in ({"runtime": "tf"}, {"image_size": 128}, {"backbone": "vgg16"}, {"weights": "/w.h5"}):
        assert image(needs_tensorflow) == f"{lean}-tf", needs_tensorflow
    assert image({"runtime": "tf"}, {"tf_image": "r.example/fruits:tf"}) == "r.example/fruits:tf"


# ---------------------------------------------------------------- the History Server
EKS = CHART / "ci" / "eks-values.yaml"
WITH_HISTORY_SERVER = {
    **BASE,
    "cluster": {"eventLogDir": "s3a://fruits/spark-events"},
    "historyServer": {"enabled": True},
}


def history_server_objects(objects: dict[str, list[dict]]) -> dict[str, dict]:
    """The History Server's objects, by kind (one of each)."""
    found = [
        d
        for documents in objects.values()
        for d in documents
        if d["metadata"]["labels"].get(COMPONENT) == "history-server"
    ]
    assert len({d["kind"] for d in found}) == len(found)
    return {d["kind"]: d for d in found}


def properties(config_map: dict) -> dict[str, str]:
    (text,) = config_map["data"].values()
    return dict(line.split("=", 1) for line in text.splitlines())


def test_the_history_server_on_eks_is_restricted_read_only_and_reads_the_event_logs_with_its_own_role(chart):
    objects = render(chart, ci_values(EKS))
    server = history_server_objects(objects)
    assert set(server) == {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy"}
    account = server["ServiceAccount"]
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/fruits-history-server"  # not the runs' role
    }
    assert account["automountServiceAccountToken"] is False
    deployment = server["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == account["metadata"]["name"] and pod["automountServiceAccountToken"] is False
    as_operator_pod = {"securityContext": container["securityContext"], "podSecurityContext": pod["securityContext"]}
    assert restricted_violations(pod, as_operator_pod) == []
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == container["securityContext"]["runAsUser"] == SPARK_UID
    conf = properties(server["ConfigMap"])
    assert conf["spark.history.fs.logDirectory"] == "s3a://fruits-data/spark-events"  # cluster.eventLogDir
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == PROVIDERS["irsa"] and "envFrom" not in container
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "s3.eu-west-1.amazonaws.com"  # job.s3Region
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for writable in ("/tmp", conf["spark.history.store.path"]):  # size-limited emptyDirs, the only writable places
        assert volumes[mounts[writable]["name"]]["emptyDir"]["sizeLimit"]
    (conf_file,) = server["ConfigMap"]["data"]
    conf_mount = next(m for m in container["volumeMounts"] if volumes[m["name"]].get("configMap"))
    assert conf_mount["readOnly"] is True and container["command"][-2:] == [
        "--properties-file",
        f"{conf_mount['mountPath']}/{conf_file}",
    ]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/v1/version", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": int(conf["spark.history.ui.port"])}]
    service = server["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 18080, "targetPort": "http"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # how `fruitsctl ui` finds it: its labels, and the directory it reads
    assert matching([service], history_server.SELECTOR) == [service]
    assert history_server.reading([service], "s3a://fruits-data/spark-events/") == [service]
    # only its own NetworkPolicy applies to it: its port, from pods of its namespace
    (run_policy,) = [p for p in objects["NetworkPolicy"] if p is not server["NetworkPolicy"]]
    assert not run_policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    policy = server["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 18080}]}]


def test_the_history_server_runs_the_spark_of_the_image(chart):
    """The command is the image's Spark: /opt/spark is the Spark distribution of the pinned pyspark
    (images/spark-base/assemble.py copies its bin/ and jars/ there; the apache/spark images have the
    same layout), run as the image's user."""
    (container,) = history_server_objects(render(chart, WITH_HISTORY_SERVER))["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    launcher, main_class = container["command"][:2]
    assert container["image"] == ClusterConfig().image  # cluster.image by default
    spark_base = (ROOT / "images" / "spark-base" / "Dockerfile").read_text()
    assert "COPY --chown=spark:spark spark/ /opt/spark/" in spark_base and "ENV SPARK_HOME=/opt/spark" in spark_base
    spark_home = Path(importlib.util.find_spec("pyspark").origin).parent
    assert (spark_home / Path(launcher).relative_to("/opt/spark")).is_file()
    (core,) = (spark_home / "jars").glob("spark-core_*.jar")
    with zipfile.ZipFile(core) as jar:
        assert main_class.replace(".", "/") + ".class" in jar.namelist()


@pytest.mark.parametrize(
    "job",
    [
        {},
        {"s3_region": "eu-west-1", "s3_credentials": "irsa"},
        {"s3_endpoint": "http://minio.minio.svc:9000/", "s3_path_style": True, "s3_credentials": "static"},
        {"s3_endpoint": "https://s3.example.com", "s3_region": "us-west-2"},
        {"s3_endpoint": "https://objects.example.com:8443", "s3_tls": False},
    ],
    ids=["aws", "irsa-region", "minio-static", "endpoint-region", "no-tls"],
)
def test_the_history_server_reaches_s3_with_the_jobs_s3a_settings(chart, job):
    """One definition of how the S3 settings become S3A's (fruits.io.s3_settings); the chart
    repeats it for the History Server, and this keeps the two equal."""
    values = {
        **WITH_HISTORY_SERVER,
        "job": {**BASE["job"], **{camel(name): value for name, value in job.items()}},
        "cluster": {**WITH_HISTORY_SERVER["cluster"], "s3Secret": "keys"},
    }
    server = history_server_objects(render(chart, values))
    conf = properties(server["ConfigMap"])
    hadoop = {
        key.removeprefix("spark.hadoop."): value for key, value in conf.items() if key.startswith("spark.hadoop.")
    }
    assert hadoop == S3Settings.of(build_config(job), environ={}).hadoop_conf_without_keys()
    (container,) = server["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "keys"}}]  # static keys, read from the environment


def test_the_history_server_cleaner_and_its_log_directory(chart):
    values = {
        **WITH_HISTORY_SERVER,
        "historyServer": {"enabled": True, "logDirectory": "s3a://logs/events", "cleaner": {"enabled": True}},
    }
    server = history_server_objects(render(chart, values))
    conf = properties(server["ConfigMap"])
    assert conf["spark.history.fs.logDirectory"] == "s3a://logs/events"  # over cluster.eventLogDir
    assert server["Service"]["metadata"]["annotations"][history_server.LOG_DIRECTORY_ANNOTATION] == "s3a://logs/events"
    assert (conf["spark.history.fs.cleaner.enabled"], conf["spark.history.fs.cleaner.maxAge"]) == ("true", "30d")
    assert "spark.history.fs.cleaner.maxAge" not in properties(
        history_server_objects(render(chart, WITH_HISTORY_SERVER))["ConfigMap"]
    )


@pytest.mark.parametrize(
    "history, message",
    [
        ({"port": 80}, "port"),
        ({"colour": "red"}, "colour"),
        ({"cleaner": {"maxAge": "a month"}}, "maxAge"),
        ({"logDirectory": "spark-events"}, "logDirectory"),
    ],
)
def test_the_schema_checks_the_history_server_values(chart, history, message):
    with pytest.raises(HelmError, match=message):
        chart.render({**BASE, "historyServer": {"enabled": True, **history}}, name="fruits", namespace="ml")


def test_the_history_server_needs_a_log_directory(chart):
    with pytest.raises(
        HelmError, match=r"historyServer\.enabled needs historyServer\.logDirectory or cluster\.eventLogDir"
    ):
        chart.render({**BASE, "historyServer": {"enabled": True}}, name="fruits", namespace="ml")
