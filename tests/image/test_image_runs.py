"""The image, run for real: the job as a pod would run it, Spark executors in containers of
their own (S3 the only storage they share), and the spark-operator's way into the image."""

import json
import socket
import subprocess
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
from image_containers import BUCKET, containers, record, s3_job_env, s3_sample  # noqa: F401 - fixtures
from typer.testing import CliRunner

from fruits import __version__
from fruits.cli.main import app
from fruits.cluster.cluster_config import spark_version
from fruits.results.run_results import open_run
from fruits.settings.config import build_config

pytestmark = pytest.mark.image
JOB = "/opt/fruits/job/main.py"
SPARK_SUBMIT = "/opt/spark/bin/spark-submit"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def s3_arguments(endpoint: str, output: str) -> list[str]:
    return [
        "--input",
        f"s3a://{BUCKET}/sample",
        "--output",
        f"s3a://{BUCKET}/runs/{output}",
        "--s3-endpoint",
        endpoint,
        "--s3-path-style",
        "--s3-credentials",
        "static",
    ]


def results(output: str):
    return open_run(f"s3a://{BUCKET}/runs/{output}", build_config({"s3_path_style": True, "s3_credentials": "static"}))


def by_path(run) -> dict[str, np.ndarray]:
    table = run.features.to_pydict()
    return {path: np.asarray(pca) for path, pca in zip(table["path"], table["pca"])}


def test_spark_python_and_the_job_agree_inside_the_image(containers):
    done = containers.run(
        "sh",
        "-c",
        f"{SPARK_SUBMIT} --version 2>&1 | grep -m1 ' version '; "
        "/opt/fruits/venv/bin/python -c 'import sys, json, fruits, pyspark; print(json.dumps("
        "[list(sys.version_info), fruits.__file__, pyspark.__version__]))'; "
        "ls /opt/fruits/venv/lib/python3.11/site-packages/pyspark/jars "
        "/opt/fruits/venv/lib/python3.11/site-packages/tensorflow/include 2>&1 | grep -c 'No such'",
        options=containers.hardened(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    spark_line, python_line, dropped = done.stdout.strip().splitlines()
    assert spark_line.split()[-1] == spark_version()  # the JVM Spark in /opt/spark
    version_info, fruits_file, pyspark_version = json.loads(python_line)
    assert pyspark_version == spark_version()  # the venv's pyspark
    assert version_info[:2] == [3, 11] and version_info[3] == "final", version_info
    assert fruits_file.startswith("/opt/fruits/venv/")
    assert dropped == "2"  # the wheel's copy of Spark's jars and TensorFlow's headers are left out
    record("python in the image", ".".join(map(str, version_info[:3])))


@pytest.fixture(scope="module")
def pod_run(containers, s3_sample, tmp_path_factory):
    """spark-submit of the job in one container, as a driver pod runs it (local mode)."""
    scratch = tmp_path_factory.mktemp("pod-tmp")
    scratch.chmod(0o777)
    started = time.monotonic()
    done = containers.run(
        SPARK_SUBMIT,
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        JOB,
        *s3_arguments(s3_sample, "pod"),
        options=[*containers.hardened(tmp=str(scratch)), *s3_job_env()],
    )
    record("pod run, 648 images (s)", round(time.monotonic() - started, 1))
    return done, scratch


def test_the_job_runs_in_the_image_as_a_pod_would(pod_run, sample_run):
    done, _ = pod_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = results("pod")
    assert run.manifest["counts"] == {"read": 648, "ok": 648, "failed": 0, "skipped": {}, "read_retries": 0}
    assert run.errors.num_rows == 0 and run.features.num_rows == 648
    assert run.manifest["pca"]["k"] == sample_run[1]["pca"]["k"]  # the same run outside the container
    # spark-submit's driver kept what it printed with the output, as a driver pod's does
    kept = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"runs/pod/{run.manifest['log']}")["Body"].read().decode()
    assert kept.startswith("Fruits! job ") and kept.endswith("Run complete.\n")


def test_the_workers_use_the_baked_model_and_download_nothing(pod_run):
    done, scratch = pod_run
    assert not list(scratch.glob("fruits-tflite*"))  # no worker converted a model
    assert not (scratch / ".keras" / "models").exists()  # Keras's download cache: nothing fetched
    printed = done.stdout + done.stderr
    assert "Downloading data from" not in printed and "TensorSpec" not in printed


@pytest.mark.parametrize(
    "runtime, env",
    [("tf", []), ("tflite", ["-e", "FRUITS_TFLITE_DIR="])],
    ids=["tf runtime", "tflite without the baked model"],
)
def test_without_any_network_imagenet_comes_from_the_baked_weights(containers, sample_dir, runtime, env):
    """--network none: a download would fail, so a complete output proves none was needed,
    whether the Keras model runs itself or is converted again from the baked weights."""
    script = (
        f"{SPARK_SUBMIT} --master 'local[2]' --conf spark.ui.enabled=false {JOB} --input /data "
        f"--output /tmp/out --runtime {runtime} --weights imagenet --k 10 >/tmp/log 2>&1 "
        "|| { tail -40 /tmp/log; exit 1; }; "
        "cat /tmp/out/manifest.json; ls /tmp/.keras/models 2>/dev/null | wc -l"
    )
    done = containers.run(
        "sh",
        "-c",
        script,
        options=[
            *containers.hardened(network="none"),
            *env,
            "-e",
            "SPARK_LOCAL_IP=127.0.0.1",
            "-v",
            f"{sample_dir}:/data:ro",
        ],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest_text, downloaded = done.stdout.rsplit("}", 1)
    manifest = json.loads(manifest_text + "}")
    assert manifest["counts"]["ok"] == 648 and manifest["config"]["runtime"] == runtime
    assert downloaded.strip() == "0"  # nothing in Keras's download cache


def test_executors_in_containers_of_their_own_give_the_same_result(containers, pod_run, s3_sample):
    """A Spark standalone cluster: a master and two workers, each in its own container with
    its own /tmp, the driver in a fourth (client mode). Nothing is shared but S3."""
    port = free_port()
    master = f"spark://127.0.0.1:{port}"
    containers.start(
        "master",
        "/opt/spark/bin/spark-class",
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(free_port()),
        options=containers.hardened(),
    )
    workers = [
        containers.start(
            f"worker{i}",
            "/opt/spark/bin/spark-class",
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "2g",
            "--port",
            str(free_port()),
            "--webui-port",
            str(free_port()),
            master,
            options=[*containers.hardened(), "-e", "SPARK_WORKER_DIR=/tmp/work", *s3_job_env()],
        )
        for i in (1, 2)
    ]
    started = time.monotonic()
    done = containers.run(
        SPARK_SUBMIT,
        "--master",
        master,
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.cores.max=2",
        "--conf",
        "spark.executor.cores=1",
        "--conf",
        "spark.executor.memory=1g",
        JOB,
        *s3_arguments(s3_sample, "cluster"),
        options=[*containers.hardened(), *s3_job_env()],
    )
    record("cluster of containers run, 648 images (s)", round(time.monotonic() - started, 1))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for worker in workers:  # each node ran an executor of the application
        assert "Asked to launch executor" in containers.logs(worker), containers.logs(worker)[-2000:]
    cluster, pod = results("cluster"), results("pod")
    assert cluster.manifest["counts"] == pod.manifest["counts"]
    assert cluster.manifest["pca"]["k"] == pod.manifest["pca"]["k"]
    cluster_rows, pod_rows = by_path(cluster), by_path(pod)
    assert sorted(cluster_rows) == sorted(pod_rows)
    paths = sorted(pod_rows)
    a, b = np.stack([cluster_rows[p] for p in paths]), np.stack([pod_rows[p] for p in paths])
    signs = np.sign(np.sum(a * b, axis=0))  # a component's sign is arbitrary; its values are not
    np.testing.assert_allclose(a * signs, b, atol=1e-4)


def test_the_operator_entry_reaches_the_job_with_the_rendered_arguments(containers, s3_sample, tmp_path):
    """The driver pod the spark-operator makes for `fruitsctl render`'s SparkApplication runs
    `/opt/entrypoint.sh driver --properties-file ... --class PythonRunner <mainApplicationFile>
    <arguments>`. Without a Kubernetes API it must get as far as the job's own code and stop
    only where Spark asks the API for its driver pod."""
    rendered = CliRunner().invoke(
        app,
        [
            "render",
            *s3_arguments(s3_sample, "operator"),
            "--name",
            "fruits-op",
            "--s3-secret",
            "s3-keys",
            "--format",
            "json",
        ],
    )
    assert rendered.exit_code == 0, rendered.output
    spec = json.loads(rendered.output)["spec"]
    properties = {
        **spec["sparkConf"],
        "spark.master": f"k8s://https://127.0.0.1:{free_port()}",
        "spark.app.name": "fruits-op",
        "spark.kubernetes.namespace": "default",
        "spark.kubernetes.driver.pod.name": "fruits-op-driver",
        "spark.kubernetes.container.image": spec["image"],
        "spark.ui.enabled": "false",
    }
    conf = tmp_path / "spark.properties"
    conf.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    conf.chmod(0o644)
    done = containers.run(
        "driver",
        "--properties-file",
        "/opt/spark/conf/spark.properties",
        "--class",
        "org.apache.spark.deploy.PythonRunner",
        spec["mainApplicationFile"],
        *spec["arguments"],
        timeout=600,
        options=[
            *containers.hardened(),
            "-v",
            f"{conf}:/opt/spark/conf/spark.properties:ro",
            "-e",
            "SPARK_DRIVER_BIND_ADDRESS=127.0.0.1",
            *s3_job_env(),
        ],
    )  # the Secret's keys
    printed = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        f"Fruits! job {__version__}: s3a://{BUCKET}/sample -> s3a://{BUCKET}/runs/operator" in printed
    )  # arguments parsed
    assert "KubernetesClientException: Operation: [get]  for kind: [Pod]  with name: [fruits-op-driver]" in printed, (
        printed[-3000:]
    )  # the first thing Spark asks the API: its own driver pod


def test_report_the_image(containers):
    """Figures for the closing note: size on disk and per layer, and what was left out."""
    size = subprocess.run(
        [containers.engine, "image", "inspect", containers.image, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    history = subprocess.run(
        [containers.engine, "history", containers.image, "--format", "{{.Size}}\t{{.CreatedBy}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    layers = [line.split("\t", 1) for line in history.splitlines() if line and not line.startswith("0B")]
    record("image size (MB)", round(int(size) / 1e6))
    record("layers over 1 MB", [f"{s} {c[:70]}" for s, c in layers if s.endswith(("MB", "GB"))])
    jars = Path(__import__("pyspark").__file__).parent / "jars"
    record(
        "left out: the pyspark wheel's copy of /opt/spark/jars (MB)",
        round(sum(p.stat().st_size for p in jars.iterdir()) / 1e6),
    )
    assert int(size) > 0
