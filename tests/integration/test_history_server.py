"""Spark's own History Server, started as the chart's Deployment starts it (its command, env and
the properties file the chart renders), from the Spark distribution the image's /opt/spark is
(the pyspark package), reading a real run's rolling event log on moto's S3 through S3A; and the
page `fruitsctl ui` prints for a finished run, opened on it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from fruits.cluster import history_server
from fruits.cluster.cluster_config import ClusterConfig, spark_version
from fruits.cluster.spark_application import spark_conf_for
from fruits.io.s3a_jars import verified_jars
from support.history_server_chart import chart_history_server

BUCKET = "history-fruits"
EVENTS = f"s3a://{BUCKET}/spark-events"
SPARK_HOME = Path(__import__("pyspark").__file__).parent  # what the image has in /opt/spark
LISTED_WITHIN_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


@pytest.fixture(scope="module")
def server(s3_server, tmp_path_factory):
    """The History Server process on 127.0.0.1, started before the run (as in a cluster)."""
    jars = verified_jars()
    if not jars:
        pytest.fail("The S3A jars are missing: run `make jars` (make test does).", pytrace=False)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="spark-events/", Body=b"")  # the log directory must exist
    folder = tmp_path_factory.mktemp("history-server")
    port = free_port()
    container, properties = chart_history_server(s3_server, port, EVENTS)
    conf_file = Path(container["command"][-1])
    store = next(line.split("=", 1)[1] for line in properties.splitlines() if line.startswith("spark.history.store."))
    # The pod's mounts, here: the ConfigMap's file and the store's emptyDir become local paths.
    local_conf = folder / conf_file.name
    local_conf.write_text(properties.replace(store, str(folder / "store")))
    command = [
        str(SPARK_HOME / Path(container["command"][0]).relative_to("/opt/spark")),
        *container["command"][1:-1],
        str(local_conf),
    ]
    environ = {
        **os.environ,  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: the Secret's keys (s3_server sets them)
        **{e["name"]: e["value"] for e in container["env"]},
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_DIST_CLASSPATH": os.pathsep.join(map(str, jars)),  # the image has them in /opt/spark/jars
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    log = folder / "history-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def finished_run(server, s3_server, sample_dir, weights, tmp_path_factory):
    """The job on four images, writing its event log as a cluster run does (the event-log settings
    a SparkApplication gets, fruits.cluster.spark_application)."""
    images = tmp_path_factory.mktemp("history-input") / "Kiwi"
    images.mkdir()
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        (images / image.name).write_bytes(image.read_bytes())
    event_log_conf = {k: v for k, v in spark_conf_for(ClusterConfig(event_log_dir=EVENTS)).items() if "eventLog" in k}
    assert event_log_conf["spark.eventLog.rolling.enabled"] == "true"
    settings = [arg for item in event_log_conf.items() for arg in ("--spark-conf", "=".join(item))]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "fruitsctl"),
            "run",
            "--input",
            str(images.parent),
            "--output",
            str(images.parent.parent / "out"),
            "--weights",
            weights,
            "--k",
            "2",
            "--spark-conf",
            "spark.ui.enabled=false",
            *settings,
            "--s3-endpoint",
            s3_server,
            "--s3-path-style",
            "--s3-credentials",
            "static",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return sorted(
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="spark-events/")["Contents"]
    )


def test_the_history_server_lists_the_run_as_completed(server, finished_run):
    url, port, log = server
    deadline, applications, problem = time.monotonic() + LISTED_WITHIN_S, [], ""
    while time.monotonic() < deadline:
        try:
            applications = json.loads(get(f"{url}/api/v1/applications")[1])
            if applications and applications[0]["attempts"][0]["completed"]:
                break
        except (urllib.error.URLError, OSError) as exc:
            problem = repr(exc)
        time.sleep(0.5)
    assert applications and applications[0]["attempts"][0]["completed"], (
        f"the History Server did not list the run as completed within {LISTED_WITHIN_S} s "
        f"(listed: {applications}, last error: {problem or 'none'}; its event logs: {finished_run});\n"
        + log.read_text()[-3000:]
    )
    (application,) = applications
    app_id = application["id"]
    # a rolling event log: a folder of numbered files and a status file, closed (no .inprogress)
    assert [key for key in finished_run if key != "spark-events/"] == [  # (S3A removes the folder's marker)
        f"spark-events/eventlog_v2_{app_id}/appstatus_{app_id}",
        f"spark-events/eventlog_v2_{app_id}/events_1_{app_id}",
    ]
    assert application["name"] == "fruits"
    status, page = get(history_server.application_page(port, app_id).replace("localhost", "127.0.0.1"))
    assert status == 200 and b"Spark Jobs" in page, page[:500]
    assert json.loads(get(f"{url}/api/v1/version")[1]) == {"spark": spark_version()}  # what the probes ask
