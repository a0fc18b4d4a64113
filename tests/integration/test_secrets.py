"""No secret anywhere it could leak: a canary secret key, used for a real run against the local
S3 server, must not appear in the run's output, the terminal, Spark's event log, the report,
a rendered SparkApplication, or anything pickled into a task."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from pyspark import cloudpickle
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store
from fruits.settings.config import build_config

CANARY = "canary-secret-7Qx2b9Lw"
BUCKET = "canary"


@pytest.fixture(scope="module")
def canary_run(s3_server, sample_dir, weights, tmp_path_factory):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        s3.upload_file(str(image), BUCKET, f"in/Kiwi/{image.name}")
    events = tmp_path_factory.mktemp("events")
    environ = {**os.environ, "AWS_SECRET_ACCESS_KEY": CANARY}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "fruitsctl"),
            "run",
            "--input",
            f"s3a://{BUCKET}/in",
            "--output",
            f"s3a://{BUCKET}/out",
            "--weights",
            weights,
            "--k",
            "2",
            "--s3-endpoint",
            s3_server,
            "--s3-path-style",
            "--s3-credentials",
            "static",
            "--spark-conf",
            "spark.ui.enabled=false",
            "--spark-conf",
            "spark.eventLog.enabled=true",
            "--spark-conf",
            f"spark.eventLog.dir=file://{events}",
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done, events, s3, environ


def test_not_in_the_terminal_the_output_or_spark_s_event_log(canary_run):
    done, events, s3, _ = canary_run
    assert CANARY not in done.stdout + done.stderr
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="out/"):
        for item in page["Contents"]:
            keys.append(item["Key"])
            assert CANARY.encode() not in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read(), item["Key"]
    (kept_log,) = [key for key in keys if key.startswith("out/_logs/") and not key.endswith("/")]  # redacted
    assert kept_log.endswith("-driver.log")
    (log,) = events.iterdir()
    text = log.read_text()
    assert "fs.s3a.secret.key" in text and CANARY not in text  # Spark redacts what it records


def test_not_in_the_report(canary_run, tmp_path):
    _, _, _, _environ = canary_run
    result = CliRunner().invoke(
        app,
        ["report", f"s3://{BUCKET}/out", "--to", str(tmp_path), "--s3-path-style", "--s3-credentials", "static"],
        env={"AWS_SECRET_ACCESS_KEY": CANARY},
    )
    assert result.exit_code == 0, result.output
    assert CANARY not in result.output and CANARY not in (tmp_path / "report.html").read_text()


def test_not_in_a_rendered_application(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    result = CliRunner().invoke(
        app,
        [
            "render",
            "--input",
            f"s3a://{BUCKET}/in",
            "--output",
            f"s3a://{BUCKET}/out",
            "--s3-credentials",
            "static",
            "--s3-secret",
            "s3-keys",
        ],
    )
    assert result.exit_code == 0 and "s3-keys" in result.output and CANARY not in result.output


def test_not_in_what_a_task_carries_nor_in_a_repr(canary_run, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    config = build_config({"s3_credentials": "static", "s3_path_style": True})
    store = Store.at(f"s3a://{BUCKET}/out", S3Settings.of(config))
    for shipped in (
        pickle.dumps(store),
        cloudpickle.dumps(lambda: (store, config)),
        repr(store).encode(),
        repr(config).encode(),
    ):
        assert CANARY.encode() not in shipped
    assert store.filesystem.get_file_info(f"{BUCKET}/out/manifest.json").size > 0  # yet it reads, with the key
