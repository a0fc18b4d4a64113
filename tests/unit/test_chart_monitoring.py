"""The chart's monitoring objects, rendered by Helm's engine with the EKS values: the PodMonitor
and PrometheusRule against prometheus-operator's real CRDs (closed), the NetworkPolicy opening
only the UI port to only the monitoring namespace, and Spark's metrics settings as the CLI's."""

import copy

import pytest
import yaml
from helm_python import Chart, HelmError

from fruits.cluster.cluster_config import PROMETHEUS_SPARK_CONF, UI_PORT
from support.chart_render import CHART, render
from support.crd_schema import closed_validator

EKS = yaml.safe_load((CHART / "ci" / "eks-values.yaml").read_text())
RULES = CHART.parents[1] / "deploy" / "prometheus" / "fruits-alerts.yaml"


@pytest.fixture(scope="module")
def chart():
    return Chart.load(str(CHART))


@pytest.fixture(scope="module")
def eks(chart):
    return render(chart, EKS, name="nightly", namespace="fruits")


@pytest.mark.parametrize("kind", ["PodMonitor", "PrometheusRule"])
def test_the_monitoring_objects_are_valid_against_the_operator_s_crds(eks, kind):
    (document,) = eks[kind]
    assert sorted(e.message for e in closed_validator(kind).iter_errors(document)) == []
    assert document["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # what the Prometheus selects


def test_the_pod_monitor_scrapes_the_driver_s_and_the_executors_metrics_on_the_ui_port(eks):
    (monitor,) = eks["PodMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "nightly-fruits-pipeline",
        "spark-role": "driver",  # the label Spark puts on the driver pod
    }
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [
        ("spark-ui", PROMETHEUS_SPARK_CONF["spark.metrics.conf.*.sink.prometheusServlet.path"]),
        ("spark-ui", "/metrics/executors/prometheus/"),
    ]


def test_the_chart_s_rules_are_the_plain_file_s_for_this_release_only(eks):
    (rule,) = eks["PrometheusRule"]
    plain = yaml.safe_load(RULES.read_text())
    own = yaml.safe_dump(rule["spec"]).replace('job=~"nightly-fruits-pipeline"', 'job=~".+"')
    assert yaml.safe_load(own) == plain
    assert all('job=~"nightly-fruits-pipeline"' in r["expr"] for r in rule["spec"]["groups"][0]["rules"])


def test_the_network_policy_admits_only_the_monitoring_namespace_and_only_to_the_ui_port(eks, chart):
    (policy,) = [p for p in eks["NetworkPolicy"] if p["metadata"]["name"] == "nightly-fruits-pipeline"]
    own, monitoring = policy["spec"]["ingress"]
    assert own == {
        "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "nightly-fruits-pipeline"}}}]
    }
    assert monitoring == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": UI_PORT}],
    }
    quiet = copy.deepcopy(EKS)
    quiet["cluster"]["prometheusMetrics"] = False
    quiet["metrics"]["podMonitor"]["create"] = False
    (closed,) = [
        p
        for p in render(chart, quiet, name="nightly", namespace="fruits")["NetworkPolicy"]
        if p["metadata"]["name"] == "nightly-fruits-pipeline"
    ]
    assert closed["spec"]["ingress"] == [own]


def test_spark_serves_its_metrics_only_when_asked(eks, chart):
    (app,) = eks["SparkApplication"]
    assert PROMETHEUS_SPARK_CONF.items() <= app["spec"]["sparkConf"].items()
    quiet = copy.deepcopy(EKS)
    quiet["cluster"]["prometheusMetrics"] = False
    quiet["metrics"]["podMonitor"]["create"] = False
    (app,) = render(chart, quiet, name="nightly", namespace="fruits")["SparkApplication"]
    assert not set(PROMETHEUS_SPARK_CONF) & set(app["spec"]["sparkConf"])


def test_a_pod_monitor_without_spark_metrics_is_refused(chart):
    values = copy.deepcopy(EKS)
    values["cluster"]["prometheusMetrics"] = False
    with pytest.raises(HelmError, match=r"metrics\.podMonitor\.create needs cluster\.prometheusMetrics"):
        chart.render(values, name="nightly", namespace="fruits")


def test_monitoring_is_off_by_default(chart):
    objects = render(chart, {"job": {"input": "s3a://b/in", "output": "s3a://b/out"}})
    assert "PodMonitor" not in objects and "PrometheusRule" not in objects
    assert "--metrics-url" not in objects["SparkApplication"][0]["spec"]["arguments"]
