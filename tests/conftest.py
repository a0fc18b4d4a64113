"""Shared fixtures: the ../shared test assets, one SparkSession per test run, and one private
temporary folder per test run."""

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

# Everything the code under test puts in the temporary folder (the workers' converted-model
# cache, TensorFlow's autograph files, Spark's block managers, run logs, pytest's own tmp_path)
# goes to a folder of this test run, removed when it ends: no test sees what an earlier run
# left in /tmp. (A JVM that a fault test kills still leaves its native-library copies in
# java.io.tmpdir.) Set before any fixture starts a JVM, whose Python workers inherit it.
SESSION_TMP = Path(tempfile.mkdtemp(prefix="fruits-tests-"))
os.environ["TMPDIR"] = str(SESSION_TMP)
os.environ["SPARK_LOCAL_DIRS"] = str(SESSION_TMP / "spark")
os.environ["FRUITS_LOG_DIR"] = str(SESSION_TMP / "logs")
tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_TMP, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE = SHARED / "data" / "fruits360-sample"
WEIGHTS = SHARED / "models" / "mobilenet_v2_backbone.weights.h5"
CRDS = SHARED / "crds"
S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


def require_shared(path: Path) -> Path:
    """Tests that need ../shared fail loudly (never skip) when it is missing."""
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the tests need the shared assets folder beside the project (expected at {SHARED}).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return require_shared(SAMPLE)


@pytest.fixture(scope="session")
def weights() -> str:
    return str(require_shared(WEIGHTS))


# The static keys of the local S3 server (moto takes any). Set before the JVM starts: Spark's
# Python workers inherit the JVM's environment, and they read the keys from it, as pods do
# from their Secret (no key travels in a task).
TEST_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    for name, value in TEST_KEYS.items():
        os.environ.setdefault(name, value)
    from fruits.io.s3a_jars import jars_dir, verified_jars
    from fruits.spark_session import local_spark

    if not verified_jars():
        pytest.fail(f"The S3A jars are missing from {jars_dir()}: run `make jars` (make test does).", pytrace=False)

    session = local_spark("local[2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_run(spark, sample_dir, weights, tmp_path_factory):
    """The job on the Fruits-360 sample with default settings, once per test run."""
    import pyarrow.parquet as pq

    from fruits.pipeline import run_job
    from fruits.settings.config import build_config

    output = tmp_path_factory.mktemp("sample") / "out"
    config = build_config({"input": str(sample_dir), "output": str(output), "weights": weights})
    manifest = run_job(spark, config)
    return output, manifest, pq.read_table(output / "features").to_pandas()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1, with the standard AWS variables pointing at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update({**TEST_KEYS, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint})
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
