"""The chart's History Server as its Deployment runs the image (its command, its properties
file, uid 185, a read-only root), reading a finished run's rolling event log on S3 through the
image's own S3A jars, and listing it as completed through its REST API."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from image_containers import containers, s3_job_env  # noqa: F401 - fixtures

from fruits.cluster.cluster_config import ClusterConfig
from fruits.cluster.spark_application import spark_conf_for
from support.history_server_chart import chart_history_server

pytestmark = pytest.mark.image
BUCKET = "history-image"
EVENTS = f"s3a://{BUCKET}/spark-events"
LISTED_WITHIN_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def applications(url: str) -> list[dict]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications", timeout=5) as answer:
            return json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return []


def test_the_image_s_history_server_lists_a_finished_run_from_s3(containers, s3_server, sample_dir, weights, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="spark-events/", Body=b"")  # the log directory must exist
    images = tmp_path / "in" / "Kiwi"
    images.mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        (images / image.name).write_bytes(image.read_bytes())
    event_logs = {k: v for k, v in spark_conf_for(ClusterConfig(event_log_dir=EVENTS)).items() if "eventLog" in k}
    command = [str(Path(sys.executable).parent / "fruitsctl"), "run", "--input", str(images.parent)]
    command += ["--output", str(tmp_path / "out"), "--weights", weights, "--k", "2"]
    command += ["--spark-conf", "spark.ui.enabled=false", "--s3-endpoint", s3_server, "--s3-path-style"]
    command += [
        "--s3-credentials",
        "static",
        *[a for item in event_logs.items() for a in ("--spark-conf", "=".join(item))],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    port = free_port()
    container, properties = chart_history_server(s3_server, port, EVENTS)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    conf_file = Path(container["command"][-1])
    (conf_dir / conf_file.name).write_text(properties)
    conf_dir.chmod(0o755)
    (conf_dir / conf_file.name).chmod(0o644)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    options = [*containers.hardened(), *s3_job_env(), "-v", f"{conf_dir}:{conf_file.parent}:ro"]
    for path in mounts.values():  # the pod's emptyDirs
        if path not in ("/tmp", str(conf_file.parent)):
            options += ["--tmpfs", f"{path}:rw,size=1g"]
    options += [arg for e in container["env"] for arg in ("-e", f"{e['name']}={e['value']}")]
    name = containers.start("history", *container["command"], options=options)

    url, listed = f"http://127.0.0.1:{port}", []
    deadline = time.monotonic() + LISTED_WITHIN_S
    while time.monotonic() < deadline and not (listed and listed[0]["attempts"][0]["completed"]):
        time.sleep(1)
        listed = applications(url)
    assert listed and listed[0]["attempts"][0]["completed"], (
        f"the image's History Server did not list the run within {LISTED_WITHIN_S} s (listed: {listed});\n"
        + containers.logs(name)[-3000:]
    )
    assert listed[0]["name"] == "fruits"
