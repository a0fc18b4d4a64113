"""Spot capacity, placed well: ci/spot-values.yaml rendered by Helm's engine against the real
CRDs, the same placement from `fruitsctl render` flags, and placement mistakes in one sentence."""

import json

import pytest
import yaml
from helm_python import Chart
from typer.testing import CliRunner

from fruits.cli.main import app
from support.chart_render import CHART, render
from support.crd_schema import validate

SPOT = yaml.safe_load((CHART / "ci" / "spot-values.yaml").read_text())
runner = CliRunner()


@pytest.fixture(scope="module")
def scheduled():
    (document,) = render(Chart.load(str(CHART)), SPOT, name="nightly", namespace="fruits")["ScheduledSparkApplication"]
    validate(document)  # the real CRD, objects closed
    return document


def test_the_driver_stays_on_demand_and_karpenter_leaves_it_alone(scheduled):
    driver = scheduled["spec"]["template"]["driver"]
    assert driver["nodeSelector"] == {"karpenter.sh/capacity-type": "on-demand"}
    assert driver["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert driver["priorityClassName"] == "fruits-driver"
    assert "tolerations" not in driver  # the spot taint keeps it off spot nodes


def test_the_executors_go_to_spot_tolerating_its_taint_with_time_to_decommission(scheduled):
    template = scheduled["spec"]["template"]
    executor = template["executor"]
    assert executor["nodeSelector"] == {"karpenter.sh/capacity-type": "spot"}
    assert executor["tolerations"] == [
        {"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}
    ]
    (preferred,) = executor["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["preference"]["matchExpressions"] == [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c7i", "c6i", "m7i"]}
    ]
    assert executor["terminationGracePeriodSeconds"] == 120
    assert template["sparkConf"]["spark.decommission.enabled"] == "true"
    assert template["dynamicAllocation"] == {
        "enabled": True,
        "initialExecutors": 2,
        "minExecutors": 0,
        "maxExecutors": 20,
        "shuffleTrackingEnabled": True,
    }
    assert (template["batchScheduler"], template["batchSchedulerOptions"]) == ("yunikorn", {"queue": "root.fruits"})


def test_the_schedule_has_its_time_zone_and_can_be_suspended(scheduled):
    assert (scheduled["spec"]["timeZone"], scheduled["spec"]["suspend"]) == ("Europe/Paris", False)
    values = {**SPOT, "suspend": True}
    (suspended,) = render(Chart.load(str(CHART)), values, name="nightly", namespace="fruits")[
        "ScheduledSparkApplication"
    ]
    assert suspended["spec"]["suspend"] is True


def test_pod_templates_are_the_escape_hatch_for_any_other_pod_field():
    values = {
        "job": {"input": "s3a://b/in", "output": "s3a://b/out"},
        "podTemplates": {"executor": {"spec": {"topologySpreadConstraints": [{"maxSkew": 1}]}}},
    }
    (app_,) = render(Chart.load(str(CHART)), values)["SparkApplication"]
    assert app_["spec"]["executor"]["template"] == {"spec": {"topologySpreadConstraints": [{"maxSkew": 1}]}}
    assert "template" not in app_["spec"]["driver"]


def test_fruitsctl_render_flags_place_the_pods_as_the_chart_does():
    single = {key: value for key, value in SPOT.items() if key not in ("schedule", "timeZone")}
    single = {**single, "job": {**SPOT["job"], "output": "s3a://fruits-data/runs/one"}}
    (chart_app,) = render(Chart.load(str(CHART)), single, name="nightly", namespace="fruits")["SparkApplication"]
    flags = [
        *("--driver-node-selector", "karpenter.sh/capacity-type=on-demand"),
        *("--driver-annotation", "karpenter.sh/do-not-disrupt=true"),
        *("--driver-priority-class", "fruits-driver"),
        *("--executor-node-selector", "karpenter.sh/capacity-type=spot"),
        *("--executor-toleration", "karpenter.sh/capacity-type=spot:NoSchedule"),
        *("--executor-preferred-nodes", "karpenter.k8s.aws/instance-family=c7i,c6i,m7i"),
        *("--executor-grace-seconds", "120"),
        *("--dynamic-allocation", "--min-executors", "0", "--initial-executors", "2", "--max-executors", "20"),
        *("--batch-scheduler", "yunikorn", "--batch-queue", "root.fruits"),
    ]
    result = runner.invoke(
        app,
        [
            "render",
            "--input",
            "s3a://fruits-data/incoming",
            "--output",
            "s3a://fruits-data/runs/one",
            *flags,
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rendered = json.loads(result.output)["spec"]
    for role in ("driver", "executor"):
        for key in ("nodeSelector", "tolerations", "affinity", "annotations", "priorityClassName"):
            assert rendered[role].get(key) == chart_app["spec"][role].get(key), (role, key)
    for key in ("dynamicAllocation", "batchScheduler", "batchSchedulerOptions"):
        assert rendered[key] == chart_app["spec"][key], key
    assert rendered["executor"]["terminationGracePeriodSeconds"] == 120


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--executor-toleration", "karpenter.sh/capacity-type=spot:NoScheduel"], "must be TAINT_KEY=VALUE:EFFECT"),
        (["--batch-queue", "root.fruits"], "need --batch-scheduler"),
        (["--max-executors", "10"], "need --dynamic-allocation"),
        (["--dynamic-allocation", "--min-executors", "5", "--max-executors", "2"], "--min-executors <="),
        (["--batch-scheduler", "kueue"], "--batch-scheduler must be one of yunikorn, volcano"),
    ],
)
def test_placement_mistakes_are_one_sentence(flags, message):
    result = runner.invoke(app, ["render", "--input", "s3a://b/in", "--output", "s3a://b/out", *flags])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
