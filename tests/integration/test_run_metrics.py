"""Run metrics through a real Pushgateway into a real Prometheus with the shipped alert rules:
a finished run's counts and last-success time, a failed run's FruitsRunFailed alert, and a
Pushgateway that is down or silent costing a good run one warning, never its result."""

import json
import shutil
import socket
import threading
import time

import pytest

from conftest import free_port
from fruits.io.output import MANIFEST
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.settings.errors import UserError
from fruits.write.run_metrics import PUSH_TIMEOUT_S, MetricsTarget, failure_metrics, push
from support.prometheus_servers import start_monitoring, stop

LABELS = ("Kiwi", "Lemon")


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory):
    monitoring, processes = start_monitoring(tmp_path_factory.mktemp("prometheus"), free_port)
    yield monitoring
    stop(processes)


@pytest.fixture(scope="module")
def small_input(sample_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for label in LABELS:
        (folder / label).mkdir()
        for image in sorted((sample_dir / label).iterdir())[:10]:
            shutil.copy(image, folder / label / image.name)
    return folder


def options(input_folder, output, weights, **more) -> dict:
    options = {"input": str(input_folder), "output": str(output), "weights": weights, "image_size": 32, "k": 2}
    return {**options, "classifier": "none", **more}


def series(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def test_a_finished_and_a_failed_run_reach_prometheus_and_the_failure_fires_its_alert(
    spark, monitoring, small_input, weights, tmp_path
):
    runs = tmp_path / "runs"
    group = {"job": "fruits", "output": str(runs)}  # the run's group, continued from run to run
    manifest = run_job(
        spark, build_config(options(small_input, runs / "{run_id}", weights, metrics_url=monitoring.pushgateway))
    )
    assert manifest["metrics"] == {
        "url": monitoring.pushgateway,
        "job": "fruits",
        "grouping": {"output": str(runs)},
        "pushed": True,
    }
    assert manifest["warnings"] == []
    selector = f'{{job="fruits",output="{runs}"}}'
    read = monitoring.eventually(
        lambda: monitoring.query(f"fruits_images_read{selector}"), lambda found: len(found) == 1
    )
    assert list(read.values()) == [manifest["counts"]["read"]] == [20]
    assert monitoring.query(f"fruits_images_ok{selector}") == {series(group): 20}
    assert monitoring.query(f"fruits_pca_components{selector}") == {series(group): 2}
    assert monitoring.query(f"fruits_run_success{selector}") == {series(group): 1}
    (last_success,) = monitoring.query(f"fruits_run_last_success_timestamp_seconds{selector}").values()
    assert abs(last_success - time.time()) < 120
    stages = monitoring.query(f"fruits_stage_duration_seconds{selector}")
    assert {key.split("stage=")[1].split(",")[0] for key in stages} >= {"ingest", "featurize", "reduce", "write"}

    broken = tmp_path / "broken"
    for label in LABELS:
        (broken / label).mkdir(parents=True)
        (broken / label / "photo.jpg").write_bytes(b"not a JPEG at all")
    with pytest.raises(UserError, match="Only 0 of 2 images could be decoded"):
        run_job(spark, build_config(options(broken, runs / "{run_id}", weights, metrics_url=monitoring.pushgateway)))

    alerts = monitoring.eventually(
        lambda: [a for a in monitoring.api("alerts")["alerts"] if a["labels"]["alertname"] == "FruitsRunFailed"],
        lambda found: any(a["state"] == "firing" for a in found),
    )
    assert [(a["state"], a["labels"]["reason"], a["labels"]["output"]) for a in alerts] == [
        ("firing", "user_error", str(runs))
    ]
    failed_run = alerts[0]["labels"]["run_id"]
    assert failed_run != manifest["run_id"]
    assert f"fruitsctl logs {failed_run}" in alerts[0]["annotations"]["description"]
    assert monitoring.query(f"fruits_run_success{selector}") == {series(group): 0}
    # the failure updated the run's series only: the last success and its counts stay
    assert list(monitoring.query(f"fruits_run_last_success_timestamp_seconds{selector}").values()) == [last_success]
    assert list(monitoring.query(f"fruits_images_read{selector}").values()) == [20]


def test_a_pushgateway_that_is_down_costs_a_good_run_one_warning(spark, small_input, weights, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    manifest = run_job(spark, build_config(options(small_input, tmp_path / "out", weights, metrics_url=url)))
    assert manifest["counts"]["ok"] == 20
    assert manifest["metrics"]["pushed"] is False
    assert "Connection refused" in manifest["metrics"]["error"]
    (warning,) = manifest["warnings"]
    assert warning.startswith(f"Could not push the run's metrics to {url} (")
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["metrics"]["pushed"] is False


def test_a_pushgateway_that_never_answers_is_given_up_on_quickly():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        accepted = []
        threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
        target = MetricsTarget(f"http://127.0.0.1:{silent.getsockname()[1]}", "fruits", "runs")
        started = time.monotonic()
        reason = push(target, failure_metrics(target, "r1", RuntimeError("boom"), {}, time.time()), replace=False)
        waited = time.monotonic() - started
    assert reason is not None and "timed out" in reason
    assert waited < PUSH_TIMEOUT_S + 5, f"the push hung for {waited:.1f} s"
