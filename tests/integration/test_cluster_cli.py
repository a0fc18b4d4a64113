"""fruitsctl against a Kubernetes API over real HTTP (tests/fake_kube.py plays the API and the operator)."""

import json
import os
import threading
import time

import pytest
import yaml
from helm_python import Chart
from typer.testing import CliRunner

from fakes.fake_kube import FakeKube
from fakes.fake_operator import FakeOperator
from fruits.cli import cluster as cluster_cli
from fruits.cli.main import app
from fruits.cluster import history_server, retry
from fruits.entrypoint import argument_parser
from fruits.settings.config import build_config
from support.chart_render import CHART, render
from support.console_text import flat
from support.crd_schema import tighten, validate, validator

runner = CliRunner()
JOB = ["--input", "s3a://fruits/in", "--output", "s3a://fruits/runs/r1", "--s3-credentials", "irsa"]


@pytest.fixture
def kube(tmp_path):
    fake = FakeKube()
    fake.config = fake.kubeconfig(tmp_path / "kubeconfig")
    yield fake
    for body in fake.created_bodies():  # everything the CLI sent must pass the real (tightened) CRD schema
        validate(body)
    fake.stop()
    assert fake.server_errors == []  # the fake API itself never failed


def cli(kube, *args):
    return runner.invoke(app, [*args, "--kubeconfig", kube.config])


def play(kube, name, steps, namespace="default"):
    """Act as the spark-operator: take each step once the CLI has read the app since the last
    one, so the CLI sees every state however slow the machine (no step waits on a clock)."""
    key = (namespace, name)

    def run():
        deadline = time.monotonic() + 30
        seen = 0
        for step in steps:
            while kube.reads.get(key, 0) <= seen and time.monotonic() < deadline:
                time.sleep(0.01)
            seen = kube.reads.get(key, 0)
            step()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- render
def test_render_prints_a_valid_spark_application():
    result = runner.invoke(
        app,
        [
            "render",
            *JOB,
            "--name",
            "r1",
            "--executors",
            "3",
            "--conf",
            "spark.x=1",
            "--label",
            "team=vision",
            "--namespace",
            "ml",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.output)
    validate(manifest)
    spec = manifest["spec"]
    assert manifest["metadata"] == {"name": "r1", "namespace": "ml", "labels": manifest["metadata"]["labels"]}
    assert manifest["metadata"]["labels"]["team"] == "vision"
    assert spec["mainApplicationFile"] == "local:///opt/fruits/job/main.py"
    assert spec["executor"]["instances"] == 3 and spec["sparkConf"]["spark.x"] == "1"
    assert spec["restartPolicy"]["type"] == "OnFailure" and spec["restartPolicy"]["onFailureRetries"] >= 1
    for pod in (spec["driver"], spec["executor"]):
        assert pod["podSecurityContext"]["runAsNonRoot"] is True and pod["podSecurityContext"]["runAsUser"] == 185
        assert pod["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_rendered_arguments_are_what_the_local_runner_accepts():
    manifest = yaml.safe_load(
        runner.invoke(app, ["render", *JOB, "--name", "r1", "--image-size", "96", "--k", "40"]).output
    )
    parsed = {
        k: v for k, v in vars(argument_parser().parse_args(manifest["spec"]["arguments"])).items() if k != "config_file"
    }
    config = build_config(parsed)
    assert (config.input, config.output, config.image_size, config.k, config.run_id) == (
        "s3a://fruits/in",
        "s3a://fruits/runs/r1",
        96,
        40,
        "r1",
    )
    assert config.s3_credentials == "irsa"


def test_render_reads_job_and_cluster_options_from_one_config_file(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "input: s3a://b/in\noutput: s3a://b/out\nexecutors: 5\n"
        "image: registry.example/fruits:1\ns3-secret: minio-keys\n"
    )
    result = runner.invoke(app, ["render", "--config", str(tmp_path / "run.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    validate(manifest)
    assert manifest["spec"]["executor"]["instances"] == 5 and manifest["spec"]["image"] == "registry.example/fruits:1"
    assert manifest["spec"]["driver"]["envFrom"] == [{"secretRef": {"name": "minio-keys"}}]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "Bad_Name"], "is not a valid SparkApplication name"),
        (["--executor-memory", "lots"], "must be a Spark memory size"),
        (["--event-log-max-file-size", "5m"], "--event-log-max-file-size must be a Spark size of at least 10m"),
        (["--executors", "0"], "--executors must be between 1 and 1000"),
        (["--conf", "novalue"], "takes KEY=VALUE"),
        (["--s3-credentials", "static"], "--s3-credentials static needs --s3-secret NAME"),
    ],
)
def test_render_refuses_bad_cluster_options(args, message):
    result = runner.invoke(app, ["render", *JOB, *args])
    assert result.exit_code == 2 and message in flat(result.output)


def test_render_with_an_event_log_rolls_it():
    events = ["--event-log-dir", "s3a://fruits/spark-events", "--event-log-max-file-size", "256m"]
    conf = yaml.safe_load(runner.invoke(app, ["render", *JOB, *events]).output)["spec"]["sparkConf"]
    assert {key: value for key, value in conf.items() if key.startswith("spark.eventLog.")} == {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "s3a://fruits/spark-events",
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": "256m",
    }
    plain = yaml.safe_load(runner.invoke(app, ["render", *JOB]).output)["spec"]["sparkConf"]
    assert not [key for key in plain if key.startswith("spark.eventLog.")]


def test_the_tightened_schema_catches_a_misspelt_key():
    manifest = yaml.safe_load(runner.invoke(app, ["render", *JOB]).output)
    manifest["spec"]["executor"]["instancez"] = 2
    assert any("instancez" in e.message for e in validator().iter_errors(manifest))
    assert tighten({"type": "object", "properties": {}})["additionalProperties"] is False


# ---------------------------------------------------------------- submit and follow
def running_then(kube, name, final, error=""):
    driver = f"{name}-driver"
    return [
        lambda: kube.set_status("default", name, "SUBMITTED"),
        lambda: kube.set_status("default", name, "RUNNING", {f"{name}-exec-1": "PENDING"}, driver),
        lambda: kube.log("default", driver, "featurize 648 images", "k = 203"),
        lambda: kube.set_status(
            "default", name, "RUNNING", {f"{name}-exec-1": "RUNNING", f"{name}-exec-2": "RUNNING"}, driver
        ),
        lambda: kube.log("default", driver, "manifest written", close=True),
        lambda: kube.set_status(
            "default",
            name,
            final,
            {f"{name}-exec-1": "COMPLETED", f"{name}-exec-2": "COMPLETED"},
            driver,
            error=error,
            ended=True,
        ),
    ]


def test_submit_wait_follows_states_streams_logs_and_exits_0_on_completed(kube):
    play(kube, "run-ok", running_then(kube, "run-ok", "COMPLETED"))
    result = cli(kube, "submit", *JOB, "--name", "run-ok", "--wait", "--logs", "--poll", "0.05")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "Created SparkApplication run-ok" in text
    for expected in (
        "run-ok: SUBMITTED",
        "run-ok: RUNNING executors: 1 PENDING",
        "run-ok: RUNNING executors: 2 RUNNING",
        "run-ok: COMPLETED executors: 2 COMPLETED",
        "driver | featurize 648 images",
        "driver | manifest written",
    ):
        assert expected in text
    assert text.index("SUBMITTED") < text.index("2 RUNNING") < text.index("COMPLETED")
    created = kube.created_bodies()
    assert len(created) == 1 and created[0]["metadata"]["labels"]["fruits.io/run"] == "run-ok"


def test_submit_wait_exits_3_with_the_error_on_failed(kube):
    play(kube, "run-bad", running_then(kube, "run-bad", "FAILED", error="driver container failed with ExitCode: 2"))
    result = cli(kube, "submit", *JOB, "--name", "run-bad", "--wait", "--poll", "0.05")
    assert result.exit_code == 3
    assert "driver container failed with ExitCode: 2" in flat(result.output)


# ---------------------------------------------------------------- against the operator's rules (fake_operator.py)
@pytest.fixture
def operator(kube):
    running = []

    def start(**options):
        running.append(FakeOperator(kube, **options))
        return running[-1]

    yield start
    for fake in running:
        fake.stop()


def test_a_failed_submission_is_retried_and_the_wait_goes_on_until_it_succeeds(kube, operator):
    """SUBMISSION_FAILED is not an end: the operator retries (here the ServiceAccount appears
    after the first attempt), and only COMPLETED or FAILED end a wait."""
    kube.forbidden_reads = True  # the CLI cannot check the account itself
    kube.service_accounts.discard(("default", "fruits-spark"))
    operator(after_failed_submission=lambda: kube.service_accounts.add(("default", "fruits-spark")))
    result = cli(kube, "submit", *JOB, "--name", "retried", "--wait", "--logs", "--poll", "0.02")
    text = flat(result.output)
    assert result.exit_code == 0, text
    assert "retried: SUBMISSION_FAILED" in text and 'serviceaccount "fruits-spark" not found' in text
    assert text.index("retried: SUBMISSION_FAILED") < text.index("retried: COMPLETED")
    assert kube.apps[("default", "retried")]["status"]["submissionAttempts"] >= 2


def test_every_submission_failing_ends_in_failed_and_exit_4(kube, operator):
    kube.forbidden_reads = True
    kube.service_accounts.clear()
    operator()
    result = cli(kube, "submit", *JOB, "--name", "never", "--retries", "2", "--wait", "--poll", "0.02")
    assert result.exit_code == 4, result.output
    assert 'serviceaccount "fruits-spark" not found' in flat(result.output)
    assert kube.apps[("default", "never")]["status"]["submissionAttempts"] == 3  # the first try and 2 retries


def test_submit_refuses_a_missing_service_account_naming_the_operators(kube, operator):
    kube.service_accounts.clear()
    result = cli(kube, "submit", *JOB, "--name", "no-sa")
    text = flat(result.output)
    assert result.exit_code == 2 and "ServiceAccount 'fruits-spark' does not exist in namespace 'default'" in text
    assert "--service-account and --executor-service-account spark-operator-spark" in text and not kube.apps


def test_submit_refuses_a_missing_namespace_with_the_install_order(kube):
    result = cli(kube, "submit", *JOB, "-n", "fruits")
    text = flat(result.output)
    assert result.exit_code == 2 and "Namespace 'fruits' does not exist: kubectl create namespace fruits" in text
    assert "spark.jobNamespaces={fruits}" in text and not kube.apps


def test_a_run_no_operator_watches_gets_a_warning_naming_job_namespaces(kube, operator, monkeypatch):
    monkeypatch.setattr(cluster_cli, "NO_STATUS_WARNING_S", 0.1)
    kube.namespaces.add("fruits")
    kube.service_accounts |= {("fruits", "fruits-spark"), ("fruits", "fruits-spark-executor")}
    operator(job_namespaces=("default",))  # the operator chart's default
    result = cli(
        kube, "submit", *JOB, "-n", "fruits", "--name", "unwatched", "--wait", "--poll", "0.02", "--timeout", "0.5"
    )
    text = flat(result.output)
    assert result.exit_code == 5
    assert "unwatched has no status after 0 s: no spark-operator seems to watch namespace 'fruits'" in text
    assert "--set 'spark.jobNamespaces={fruits}'" in text


def test_logs_follow_waits_for_the_driver_pod_and_wait_follows_a_run_it_did_not_submit(kube, operator, monkeypatch):
    monkeypatch.setattr(cluster_cli, "DRIVER_POD_POLL_S", 0.02)
    kube.apps[("default", "from-helm")] = yaml.safe_load(
        runner.invoke(app, ["render", *JOB, "--name", "from-helm"]).output
    )
    play(kube, "from-helm", [operator])  # the operator submits it once logs -f has seen it NEW
    logs = cli(kube, "logs", "from-helm", "-f")
    assert logs.exit_code == 0, logs.output
    assert "from-helm is NEW: waiting for its driver pod" in flat(logs.output) and "run completed" in logs.output
    waited = cli(kube, "wait", "from-helm", "--poll", "0.02")
    assert waited.exit_code == 0 and "from-helm: COMPLETED" in flat(waited.output)


@pytest.mark.parametrize("name", ["1st-run", "Run", "run_1", "run-"])
def test_names_the_operator_would_refuse_are_refused_before_any_request(kube, name):
    result = cli(kube, "submit", *JOB, "--name", name)
    assert result.exit_code == 2 and "is not a valid SparkApplication name" in flat(result.output)
    assert not kube.requests


def test_a_webhook_denial_is_reported_as_such_not_as_rbac(kube):
    kube.webhook_denial = 'spec.sparkConf: "spark.kubernetes.container.image" is managed by the operator'
    result = cli(kube, "submit", *JOB, "--name", "denied")
    text = flat(result.output)
    assert result.exit_code == 2 and "admission webhook refused the SparkApplication" in text
    assert "is managed by the operator" in text and "Role" not in text


def test_submit_wait_rides_out_an_api_server_that_cannot_answer_for_a_while(kube):
    def restart():
        kube.unavailable = 4  # the next four requests get 503

    play(kube, "run-blip", [restart, *running_then(kube, "run-blip", "COMPLETED")])
    result = cli(kube, "submit", *JOB, "--name", "run-blip", "--wait", "--poll", "0.05")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "answered 503" in text and "Asking again" in text and "answers again" in text
    assert "run-blip: COMPLETED" in text


def test_submit_wait_gives_up_on_an_api_server_gone_too_long_in_one_sentence(kube, monkeypatch):
    monkeypatch.setattr(retry, "API_OUTAGE_LIMIT_S", 0.5)
    play(kube, "run-gone", [lambda: setattr(kube, "unavailable", 10_000)])
    result = cli(kube, "submit", *JOB, "--name", "run-gone", "--wait", "--poll", "0.05")
    kube.unavailable = 0
    assert result.exit_code == 2, result.output
    assert "answered 503" in flat(result.output) and "fruitsctl wait run-gone" in flat(result.output)
    assert "Traceback" not in result.output


def test_submit_wait_exits_5_on_timeout(kube):
    result = cli(kube, "submit", *JOB, "--name", "run-slow", "--wait", "--poll", "0.05", "--timeout", "0.3")
    assert result.exit_code == 5 and "Timed out" in flat(result.output)


def test_submit_without_wait_names_the_run_and_returns(kube):
    result = cli(kube, "submit", *JOB)
    assert result.exit_code == 0
    (name,) = [key[1] for key in kube.apps]
    assert name.startswith("fruits-") and f"fruitsctl wait {name} -n default --logs" in flat(result.output)


# ---------------------------------------------------------------- status, list, logs, events, delete, ui
@pytest.fixture
def finished(kube):
    for name in ("fr-a", "fr-b"):
        assert cli(kube, "submit", *JOB, "--name", name).exit_code == 0
        kube.set_status("default", name, "COMPLETED", {f"{name}-exec-1": "COMPLETED"}, f"{name}-driver", ended=True)
        kube.log("default", f"{name}-driver", f"{name} line 1", f"{name} line 2", close=True)
        kube.event("default", "Pod", f"{name}-driver", "Scheduled", f"Successfully assigned {name}-driver")
        kube.event("default", "Pod", f"{name}-exec-1", "OOMKilling", "Memory cgroup out of memory", "Warning")
    kube.apps[("default", "other-app")] = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "other-app", "namespace": "default", "labels": {}},
    }
    return kube


def test_list_shows_only_the_pipelines_runs(finished):
    result = cli(finished, "list")
    assert result.exit_code == 0
    assert "fr-a" in result.output and "fr-b" in result.output and "other-app" not in result.output
    assert "COMPLETED" in result.output
    as_json = json.loads(cli(finished, "list", "-o", "json").output)
    assert sorted(a["metadata"]["name"] for a in as_json) == ["fr-a", "fr-b"]


def test_status_shows_state_driver_ui_and_executors(finished):
    result = cli(finished, "status", "fr-a")
    text = flat(result.output)
    assert result.exit_code == 0
    for expected in (
        "state COMPLETED",
        "driver pod fr-a-driver",
        "Spark UI 10.0.0.7:4040",
        "fr-a-exec-1: COMPLETED",
        "1 submissions, 1 executions",
    ):
        assert expected in text
    assert yaml.safe_load(cli(finished, "status", "fr-a", "-o", "yaml").output)["metadata"]["name"] == "fr-a"


def test_logs_and_events(finished):
    logs = cli(finished, "logs", "fr-b")
    assert logs.exit_code == 0 and logs.output.splitlines() == ["fr-b line 1", "fr-b line 2"]
    events = cli(finished, "events", "fr-a")
    text = flat(events.output)
    assert "Scheduled" in text and "OOMKilling" in text and "fr-b" not in text


def test_logs_of_a_run_whose_driver_pod_is_gone_shows_the_log_it_kept(kube, s3_server):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="kept-logs")
    job = ["--input", "s3a://kept-logs/in", "--output", "s3a://kept-logs/runs/{run_id}", "--s3-credentials", "irsa"]
    assert cli(kube, "submit", *job, "--name", "fr-gone").exit_code == 0
    kube.set_status("default", "fr-gone", "FAILED", {}, "fr-gone-driver", error="driver failed", ended=True)
    for stamp, text in (
        ("20261204T030000000000Z", "first attempt\n"),
        ("20261204T031500000000Z", "Error: Only 0 of 2\n"),
    ):
        s3.put_object(Bucket="kept-logs", Key=f"runs/fr-gone/_logs/fr-gone-{stamp}-driver.log", Body=text.encode())
    kube.log("default", "fr-gone-driver", "live line", close=True)
    assert cli(kube, "logs", "fr-gone").output.splitlines() == ["live line"]  # the pod is there: its log

    del kube.pods[("default", "fr-gone-driver")]  # the operator's TTL removed it
    gone = cli(kube, "logs", "fr-gone")
    assert gone.exit_code == 0, gone.output
    lines = gone.output.splitlines()
    assert lines[-1] == "Error: Only 0 of 2"  # the last attempt's log
    assert "is gone" in flat(gone.output) and "s3a://kept-logs/runs/fr-gone/_logs/fr-gone-20261204T031500" in flat(
        gone.output
    )

    assert cli(kube, "submit", *job, "--name", "fr-none").exit_code == 0
    kube.set_status("default", "fr-none", "FAILED", {}, "fr-none-driver", ended=True)
    del kube.pods[("default", "fr-none-driver")]
    none = cli(kube, "logs", "fr-none")
    assert none.exit_code == 2 and "no log was kept in s3a://kept-logs/runs/fr-none/_logs/" in flat(none.output)


def running_driver(kube, name="fr-live"):
    assert cli(kube, "submit", *JOB, "--name", name).exit_code == 0
    kube.set_status("default", name, "RUNNING", {f"{name}-exec-1": "RUNNING"}, f"{name}-driver")
    return f"{name}-driver"


def log_requests(kube, pod):
    return [query for path, query in kube.queries if path.endswith(f"/pods/{pod}/log")]


@pytest.mark.parametrize("cut_after", [1, 2, 3, 4])
def test_logs_follow_reconnects_after_a_dropped_stream_without_losing_or_repeating_a_line(kube, cut_after):
    pod = running_driver(kube)
    at = time.time_ns() - 10**9
    kube.log("default", pod, "line 1", at=at)
    kube.log("default", pod, "line 2", "line 3", "line 4", at=at + 1000)  # one timestamp: told apart by their order
    kube.log("default", pod, "line 5", close=True)
    kube.set_status("default", "fr-live", "COMPLETED", driver=pod, ended=True)
    kube.cut_streams = [cut_after]
    result = cli(kube, "logs", "fr-live", "-f")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"line {n}" for n in range(1, 6)]
    first, again = log_requests(kube, pod)
    assert first["follow"] == "True" and first["timestamps"] == "True" and "sinceSeconds" not in first
    assert 30 <= int(again["sinceSeconds"]) <= 35  # the seconds since the last line shown, plus the margin


def test_logs_follow_gives_up_in_one_sentence_when_the_api_stays_away(kube, monkeypatch):
    monkeypatch.setattr(retry, "API_OUTAGE_LIMIT_S", 0.5)
    pod = running_driver(kube)
    kube.log("default", pod, "line 1", "line 2")
    kube.cut_streams, kube.unavailable_after_cut = [1], 10_000
    result = cli(kube, "logs", "fr-live", "-f")
    kube.unavailable = 0
    assert result.exit_code == 2 and "line 1" in result.output.splitlines(), result.output
    assert (
        "The log of pod fr-live-driver stopped and could not be read again for 0 s (the Kubernetes API at "
        "http://127.0.0.1:"
    ) in flat(result.output)
    assert "answered 503 Service Unavailable): `fruitsctl logs` shows it once the API answers." in flat(result.output)


def test_events_follow_watches_resumes_a_dropped_watch_and_lists_again_after_410_gone(kube):
    pod = running_driver(kube)
    kube.event("default", "Pod", pod, "Scheduled", "assigned to node-1")
    kube.event("default", "Pod", "someone-else", "Pulled", "not ours")

    def finish():
        kube.event("default", "Pod", f"{pod[:-7]}-exec-2", "Started", "executor 2 started")
        kube.set_status("default", "fr-live", "COMPLETED", driver=pod, ended=True)

    kube.on_watch = {
        1: lambda: (
            kube.event("default", "Pod", pod, "Pulled", "image present"),
            kube.event("default", "Pod", f"{pod[:-7]}-exec-1", "OOMKilling", "out of memory", "Warning"),
        ),
        2: lambda: (kube.repeat_event(0), kube.compact()),  # Scheduled again; versions before now forgotten
        3: finish,
    }
    kube.cut_streams = [1]  # the first watch drops after one event
    result = cli(kube, "events", "fr-live", "-f", "--poll", "1")
    assert result.exit_code == 0, result.output
    lines = [flat(line) for line in result.output.splitlines()]
    reasons = [
        next((r for r in ("Scheduled", "Pulled", "OOMKilling", "Started") if f" {r} " in line), line) for line in lines
    ]
    # listed; watched until the drop; listed again after 410 (by time, then name); watched
    assert reasons[:2] == ["Scheduled", "Pulled"] and sorted(reasons[2:4]) == ["OOMKilling", "Scheduled"], lines
    assert reasons[4:] == ["Started"], lines
    assert sum(line.endswith("assigned to node-1 (x2)") for line in lines) == 1 and "not ours" not in result.output
    watches = [q for path, q in kube.queries if path.endswith("/events") and q.get("watch")]
    assert [w["resourceVersion"] for w in watches] == ["2", "3", "5"]  # listed at 2; resumed at 3; listed again at 5


def test_delete(finished):
    result = cli(finished, "delete", "fr-a")
    assert result.exit_code == 0 and ("default", "fr-a") not in finished.apps
    again = cli(finished, "delete", "fr-a")
    assert again.exit_code == 2 and "No SparkApplication named 'fr-a' in namespace 'default'" in flat(again.output)


def test_ui_port_forwards_to_a_running_driver(kube):
    assert cli(kube, "submit", *JOB, "--name", "live").exit_code == 0
    stopped = cli(kube, "ui", "live")
    assert stopped.exit_code == 2 and "is not running" in flat(stopped.output)
    kube.set_status("default", "live", "RUNNING", {}, "live-driver")
    result = cli(kube, "ui", "live", "--port", "4141", "--print-command")
    assert result.exit_code == 0
    assert result.output.split()[:5] == ["kubectl", "port-forward", "pod/live-driver", "4141:4040", "--namespace"]


EVENTS = "s3a://fruits/spark-events"


def chart_history_server(log_directory: str, release: str = "fruits") -> dict:
    """The History Server's Service as the chart renders it."""
    values = {
        "job": {"input": "s3a://fruits/in", "output": "s3a://fruits/out"},
        "cluster": {"eventLogDir": log_directory},
        "historyServer": {"enabled": True},
    }
    (service,) = render(Chart.load(str(CHART)), values, name=release, namespace="default")["Service"]
    return service


def add_service(kube, service: dict) -> str:
    meta = service["metadata"]
    kube.service("default", meta["name"], meta["labels"], meta["annotations"], service["spec"]["ports"][0]["port"])
    return meta["name"]


@pytest.fixture
def ended(kube):
    """A finished run that wrote its event log, with the Spark application id the operator recorded."""
    assert cli(kube, "submit", *JOB, "--name", "done", "--event-log-dir", EVENTS).exit_code == 0
    kube.set_status("default", "done", "COMPLETED", {}, "done-driver", ended=True)
    kube.apps[("default", "done")]["status"]["sparkApplicationId"] = "spark-4f1c2a"
    return kube


def test_ui_of_a_finished_run_port_forwards_to_the_history_server_reading_its_event_logs(ended, tmp_path, monkeypatch):
    missing = cli(ended, "ui", "done")
    assert missing.exit_code == 2 and "historyServer.enabled=true" in flat(missing.output)
    add_service(ended, chart_history_server("s3a://fruits/other-events", release="aaa"))  # listed first, elsewhere
    name = add_service(ended, chart_history_server(EVENTS + "/"))
    result = cli(ended, "ui", "done", "--port", "4141", "--print-command")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [
        "kubectl",
        "port-forward",
        f"service/{name}",
        "4141:18080",
        "--namespace",
        "default",
        "--kubeconfig",
        ended.config,
    ]
    page = "http://localhost:4141/history/spark-4f1c2a/jobs/"
    assert page in flat(result.output)
    listed = [query for path, query in ended.queries if path == "/api/v1/namespaces/default/services"]
    assert listed and all(q["labelSelector"] == history_server.SELECTOR for q in listed)

    kubectl = tmp_path / "bin" / "kubectl"  # a kubectl that records what it was asked to do
    kubectl.parent.mkdir()
    kubectl.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "kubectl-args"}\n')
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{kubectl.parent}:{os.environ['PATH']}")
    opened = cli(ended, "ui", "done", "--port", "4141")
    assert opened.exit_code == 0, opened.output
    assert (tmp_path / "kubectl-args").read_text().split() == result.stdout.split()[1:]
    (line,) = opened.output.strip().splitlines()
    assert line == (
        f"The driver of done has ended (COMPLETED): its Spark UI is on the History Server service/{name}: "
        f"{page}  (Ctrl-C to stop)"
    )


def test_ui_of_a_finished_run_takes_a_named_history_server_and_refuses_a_run_without_event_logs(ended):
    ended.namespaces.add("spark-history")
    ended.service("spark-history", "history", {}, {}, 18080)
    result = cli(ended, "ui", "done", "--history-server", "spark-history/history", "--print-command")
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[2:6] == ["service/history", "4040:18080", "--namespace", "spark-history"]
    gone = cli(ended, "ui", "done", "--history-server", "nope")
    assert gone.exit_code == 2 and "services 'nope' not found in namespace 'default'" in flat(gone.output)
    assert cli(ended, "submit", *JOB, "--name", "unlogged").exit_code == 0
    ended.set_status("default", "unlogged", "FAILED", {}, "unlogged-driver", ended=True)
    ended.apps[("default", "unlogged")]["status"]["sparkApplicationId"] = "spark-99"
    unlogged = cli(ended, "ui", "unlogged")
    assert unlogged.exit_code == 2 and "wrote no Spark event log" in flat(unlogged.output)
    assert "--event-log-dir" in flat(unlogged.output)


# ---------------------------------------------------------------- errors
def test_name_already_exists(kube):
    assert cli(kube, "submit", *JOB, "--name", "twice").exit_code == 0
    result = cli(kube, "submit", *JOB, "--name", "twice")
    assert result.exit_code == 2 and "A SparkApplication named 'twice' already exists" in flat(result.output)


def test_app_not_found(kube):
    result = cli(kube, "status", "nope")
    assert result.exit_code == 2 and "No SparkApplication named 'nope'" in flat(result.output)


def test_crd_not_installed_says_how_to_install_the_operator(kube):
    kube.crd_installed = False
    result = cli(kube, "submit", *JOB)
    text = flat(result.output)
    assert result.exit_code == 2 and "SparkApplication resource is not installed" in text
    assert "helm upgrade --install spark-operator" in text and "spark.jobNamespaces={default}" in text


def test_forbidden(kube):
    kube.forbidden = True
    result = cli(kube, "list")
    assert result.exit_code == 2 and "Forbidden: your Kubernetes identity may not list sparkapplications" in flat(
        result.output
    )


def test_cluster_unreachable(kube):
    kube.stop()
    result = cli(kube, "list")
    assert result.exit_code == 2 and f"Cannot reach the Kubernetes API at {kube.url}" in flat(result.output)
    kube.stop = lambda: None  # already stopped


def test_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2 and "No Kubernetes configuration found" in flat(result.output)
    missing = runner.invoke(app, ["list", "--kubeconfig", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist: check --kubeconfig" in flat(missing.output)


def test_a_cluster_run_needs_input_and_output():
    result = runner.invoke(app, ["render"])
    assert result.exit_code == 2 and "needs --input and --output" in flat(result.output)
