"""S3 that stalls mid-featurize, through a fault-injecting proxy of our own in front of moto's
server: a stall shorter than the retry bound costs no row; a longer one fails the run in one
sentence with nothing published. Error rows are for bad images, never for a storage outage."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from fakes.stalling_proxy import StallingProxy
from fruits.io.output import MANIFEST
from fruits.pipeline import run_job
from fruits.settings.config import build_config

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
BUCKET = "stalls"
LABELS = ("Kiwi", "Lemon", "Banana", "Walnut")


@pytest.fixture(scope="module")
def s3_input(s3_server, sample_dir):
    """144 sample images in moto: the input's URI and its image count."""
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket=BUCKET)
    images = [image for label in LABELS for image in sorted((sample_dir / label).iterdir())]
    for image in images:
        client.upload_file(str(image), BUCKET, f"images/{image.parent.name}/{image.name}")
    return f"s3a://{BUCKET}/images", len(images)


@pytest.fixture
def proxy(s3_server):
    host, port = s3_server.split("://", 1)[1].split(":")
    with StallingProxy(host, int(port)) as proxy:
        yield proxy


def stall_once_featurizing(output: Path, proxy: StallingProxy, seconds: float) -> threading.Thread:
    """Pause the proxy for `seconds` as soon as the run's first partition is staged (reads of
    the other partitions are then under way or to come)."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while not list(output.glob("_staging/*/stats-*.npz")) and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.pause(seconds)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def options(uri: str, output: Path, weights: str, endpoint: str) -> dict:
    return {
        "input": uri,
        "output": str(output),
        "weights": weights,
        "image_size": 32,
        "k": 4,
        "partitions": 16,
        "classifier": "none",
        "s3_endpoint": endpoint,
        "s3_path_style": True,
        "s3_credentials": "static",
    }


def test_a_25_s_stall_mid_featurize_is_retried_and_costs_no_row(spark, s3_input, proxy, weights, tmp_path):
    uri, images = s3_input
    output = tmp_path / "out"
    watcher = stall_once_featurizing(output, proxy, 25)
    started = time.monotonic()
    manifest = run_job(spark, build_config(options(uri, output, weights, proxy.endpoint)))
    watcher.join(timeout=1)
    assert time.monotonic() - started > 25, "the run ended before the stall did: it cannot have met it"
    counts = manifest["counts"]
    assert (counts["ok"], counts["failed"]) == (images, 0)
    assert counts["read_retries"] > 0  # S3's own 3 attempts (~18 s) did not outlast the stall: ours did
    assert pq.read_table(output / "errors").num_rows == 0


def test_a_stall_longer_than_the_retry_bound_fails_the_run_in_one_sentence(s3_input, proxy, weights, tmp_path):
    uri, _ = s3_input
    output = tmp_path / "out"
    flags = [
        f"--{key.replace('_', '-')}={value}" for key, value in options(uri, output, weights, proxy.endpoint).items()
    ]
    flags = [flag.replace("--s3-path-style=True", "--s3-path-style") for flag in flags]
    watcher = stall_once_featurizing(output, proxy, 600)
    run = subprocess.run(
        [FRUITSCTL, "run", "--master", "local[2,2]", "--spark-conf", "spark.ui.enabled=false", *flags],
        env={**os.environ, "FRUITS_STORAGE_RETRY_S": "3"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    watcher.join(timeout=1)
    said = run.stdout + run.stderr
    assert run.returncode == 2, said
    error = [line for line in said.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "kept failing for 3 s" in error[0] and "not the image" in error[0], said
    assert "Traceback" not in said
    assert not (output / MANIFEST).exists()
    assert not output.exists() or not list(output.rglob("*.parquet"))  # nothing that looks like results
