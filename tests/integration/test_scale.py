"""At cluster scale: what the driver receives does not grow with the tasks, tasks are cut for
the cores the job asked for, and a retried driver of the same application finds its own run."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fruits.pipeline import default_run_id

BIN = Path(sys.executable).parent
FEATURE_BYTES = 1280 * 1280 * 8  # one MobileNetV2 scatter matrix


def run_cli(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "fruitsctl"), "run", "--spark-conf", "spark.ui.enabled=false", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_200_tasks_fit_a_64_mib_result_limit(sample_dir, weights, tmp_path):
    """Each task's moments (12.5 MiB) went through an accumulator: 24 tasks broke a 300 MiB
    limit. Now the driver receives one merged tally per merge task, whatever the tasks."""
    done = run_cli(
        "--input",
        str(sample_dir),
        "--output",
        str(tmp_path / "out"),
        "--weights",
        weights,
        "--partitions",
        "200",
        "--spark-conf",
        "spark.driver.maxResultSize=64m",
        "--batch-size",
        "8",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["featurize"]["partitions"] == 200 and manifest["counts"]["ok"] == 648
    assert manifest["featurize"]["stats_bytes_to_driver"] < 2 * FEATURE_BYTES  # one tally (local: one executor)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def standalone_cluster(tmp_path):
    """A Spark standalone master and one worker of 1 core (from the pyspark install): the
    job will ask for 4."""
    port = free_port()
    environment = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "PYSPARK_PYTHON": sys.executable,
    }
    spark_class = str(BIN / "spark-class")
    processes = [
        subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    processes.append(
        subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",  # retries the master "--host", "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "2g",
                "--webui-port",
                str(free_port()),
                f"spark://127.0.0.1:{port}",
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    yield f"spark://127.0.0.1:{port}", environment
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def test_tasks_are_cut_for_the_cores_asked_for_not_those_registered_yet(
    standalone_cluster, sample_dir, weights, tmp_path
):
    master, environment = standalone_cluster
    source = tmp_path / "in"
    for label in ("Kiwi", "Lemon"):
        (source / label).mkdir(parents=True)
        for image in sorted((sample_dir / label).glob("*.jpg"))[:10]:
            (source / label / image.name).write_bytes(image.read_bytes())
    done = subprocess.run(
        [
            str(BIN / "spark-submit"),
            "--master",
            master,
            "--conf",
            "spark.cores.max=4",
            "--conf",
            "spark.executor.memory=1g",
            "--conf",
            "spark.ui.enabled=false",
            str(Path(__file__).resolve().parents[2] / "job" / "main.py"),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "out"),
            "--weights",
            weights,
            "--k",
            "2",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["featurize"]["planned_cores"] == 4 and manifest["featurize"]["partitions"] == 4
    assert manifest["counts"]["ok"] == 20


class _Conf(dict):
    def get(self, key, default=None):
        return super().get(key, default)


class _Context:
    def __init__(self, conf, name):
        self._conf, self.appName = _Conf(conf), name

    def getConf(self):
        return self._conf


class _Session:
    def __init__(self, conf, name="fruits"):
        self.sparkContext = _Context(conf, name)


def test_on_kubernetes_the_run_id_is_the_applications_name():
    """The operator passes `--name <SparkApplication>` to spark-submit: every driver attempt of
    one application (and each scheduled run, named <name>-<time>) gets the same run id."""
    on_k8s = _Session({"spark.kubernetes.driver.pod.name": "nightly-1764547200-driver"}, name="nightly-1764547200")
    assert default_run_id(on_k8s) == default_run_id(on_k8s) == "nightly-1764547200"
    elsewhere = default_run_id(_Session({}))
    assert elsewhere != "fruits" and elsewhere[:8].isdigit()
