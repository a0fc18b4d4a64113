"""The images, run for real: the job as a pod would run it, Spark executors in containers of
their own (S3 the only storage they share), and the spark-operator's way into the image; the
lean image without TensorFlow, the -tf one with it."""

import json
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import pytest
from image_containers import BUCKET, containers, record, s3_job_env, s3_sample, tf_containers  # noqa: F401 - fixtures
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


def offline(containers, sample: Path, *env: str) -> list[str]:
    """A pod's restrictions without any network, the sample mounted read-only at /data."""
    return [
        *containers.hardened(network="none"),
        *env,
        "-e",
        "SPARK_LOCAL_IP=127.0.0.1",
        "-v",
        f"{sample}:/data:ro",
    ]


def test_the_lean_image_has_no_tensorflow(containers):
    done = containers.run(
        "/opt/fruits/venv/bin/python",
        "-c",
        "import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in "
        "('tensorflow', 'keras', 'h5py', 'clang', 'ai_edge_litert', 'pyspark')}))",
        options=containers.hardened(network="none"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    assert found == {
        "tensorflow": False,
        "keras": False,
        "h5py": False,
        "clang": False,
        "ai_edge_litert": True,
        "pyspark": True,
    }


@pytest.fixture(scope="module")
def few_classes(tmp_path_factory, sample_dir) -> Path:
    """Four classes of the sample (144 images): what a run needs to show which model it ran."""
    folder = tmp_path_factory.mktemp("few-classes")
    for label in sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:4]:
        (folder / label).mkdir()
        for image in sorted((sample_dir / label).glob("*.jpg")):
            (folder / label / image.name).write_bytes(image.read_bytes())
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


SEPARATOR = "----"


def test_the_lean_image_serves_the_defaults_at_both_precisions_from_its_baked_models(containers, few_classes):
    """--network none and no TensorFlow: each precision's model is the baked file (its SHA-256
    in the manifest), so nothing was downloaded or converted."""
    runs = "".join(
        f"{SPARK_SUBMIT} --master 'local[2]' --conf spark.ui.enabled=false {JOB} --input /data "
        f"--output /tmp/{name} --k 2 {flags} >/tmp/{name}.log 2>&1 || {{ tail -40 /tmp/{name}.log; exit 1; }}; "
        f"cat /tmp/{name}/manifest.json; echo; echo {SEPARATOR}; "
        for name, flags in (("int8", ""), ("float32", "--precision float32"))
    )
    started = time.monotonic()
    done = containers.run("sh", "-c", runs + "sha256sum /opt/fruits/tflite/*", options=offline(containers, few_classes))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record("lean image: two offline runs of 144 images, int8 and float32 (s)", round(time.monotonic() - started, 1))
    int8_text, float32_text, digests = done.stdout.split(SEPARATOR)
    baked = {line.split()[0] for line in digests.strip().splitlines()}
    assert len(baked) == 2  # the two models the image bakes, and nothing else
    manifests = {"int8": json.loads(int8_text), "float32": json.loads(float32_text)}
    for precision, manifest in manifests.items():
        assert manifest["counts"]["ok"] == 144 and manifest["config"]["runtime"] == "tflite"
        assert manifest["backbone"]["precision"] == precision
        assert manifest["backbone"]["model_sha256"] in baked
    assert manifests["int8"]["backbone"]["model_sha256"] != manifests["float32"]["backbone"]["model_sha256"]


@pytest.mark.parametrize(
    "flags, needs",
    [
        (["--runtime", "tf"], "--runtime tf"),
        (["--image-size", "128"], "Converting mobilenet_v2 at 128 px with ImageNet weights to int8"),
    ],
    ids=["tf runtime", "another image size"],
)
def test_the_lean_image_refuses_what_needs_tensorflow_naming_the_tf_image(
    containers, tf_containers, few_classes, flags, needs
):
    """One sentence, exit code 2, before Spark starts any work: the image that can serve it."""
    done = containers.run(
        SPARK_SUBMIT,
        "--master",
        "local[1]",
        "--conf",
        "spark.ui.enabled=false",
        JOB,
        "--input",
        "/data",
        "--output",
        "/tmp/out",
        *flags,
        options=offline(containers, few_classes),
        timeout=300,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 2, printed[-3000:]
    (error,) = [line for line in printed.splitlines() if line.startswith("Error: ")]
    assert error.startswith(f"Error: {needs} needs TensorFlow, which this image leaves out"), error
    assert f"run it on the {tf_containers.image} image (make image-tf)" in error
    assert "Traceback" not in printed


@pytest.mark.parametrize(
    "runtime, env",
    [("tf", []), ("tflite", ["-e", "FRUITS_TFLITE_DIR="])],
    ids=["tf runtime", "tflite without the baked model"],
)
def test_without_any_network_imagenet_comes_from_the_baked_weights(tf_containers, sample_dir, runtime, env):
    """In the -tf image, --network none: a download would fail, so a complete output proves
    none was needed, whether the Keras model runs itself or is converted again from the baked
    weights."""
    script = (
        f"{SPARK_SUBMIT} --master 'local[2]' --conf spark.ui.enabled=false {JOB} --input /data "
        f"--output /tmp/out --runtime {runtime} --weights imagenet --k 10 >/tmp/log 2>&1 "
        "|| { tail -40 /tmp/log; exit 1; }; "
        "cat /tmp/out/manifest.json; ls /tmp/.keras/models 2>/dev/null | wc -l"
    )
    done = tf_containers.run("sh", "-c", script, options=offline(tf_containers, sample_dir, *env))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest_text, downloaded = done.stdout.rsplit("}", 1)
    manifest = json.loads(manifest_text + "}")
    assert manifest["counts"]["ok"] == 648 and manifest["config"]["runtime"] == runtime
    assert downloaded.strip() == "0"  # nothing in Keras's download cache


TASKS = 8  # featurize tasks of the cluster runs: several per executor, so one can be lost mid-stage
FEATURIZE_STAGE = 0  # featurize is the run's first Spark stage
GRACE_S = 120  # a reclaimed spot node's notice: what a decommissioned executor has to finish its task


@dataclass(frozen=True)
class Worker:
    container: str
    webui: int  # the port of its web UI, where the driver links the logs of each executor it runs


def start_cluster(containers, workers: int, decommission: bool = False) -> tuple[str, list[Worker]]:
    """A Spark standalone master and `workers` workers of one core each, each in a container of
    its own with its own /tmp; returns the master's URL and the workers.
    `decommission`: a worker that gets SIGPWR (Spark's spark.worker.decommission.signal)
    decommissions itself and its executors; without it, and on SIGTERM, it just exits."""
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
    decommissioning = ["-e", "SPARK_WORKER_OPTS=-Dspark.decommission.enabled=true"] if decommission else []
    started = []
    for i in range(1, workers + 1):
        webui = free_port()
        name = containers.start(
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
            str(webui),
            master,
            options=[*containers.hardened(), "-e", "SPARK_WORKER_DIR=/tmp/work", *decommissioning, *s3_job_env()],
        )
        started.append(Worker(name, webui))
    return master, started


@dataclass(frozen=True)
class Driver:
    container: str
    ui: int | None  # the port of its UI, whose REST API lists its executors and their tasks

    def ask(self, path: str) -> list:
        """GET the application's `path` in the driver's REST API; [] while it cannot answer."""
        api = f"http://127.0.0.1:{self.ui}/api/v1/applications"
        try:
            with urllib.request.urlopen(api, timeout=5) as apps:
                app = json.load(apps)[0]["id"]
            with urllib.request.urlopen(f"{api}/{app}/{path}", timeout=5) as answer:
                return json.load(answer)
        except (OSError, ValueError, IndexError, KeyError):
            return []

    def executors(self, dead: bool = False) -> list[dict]:
        """Its executors (with `dead`, the removed ones too)."""
        return [e for e in self.ask("allexecutors" if dead else "executors") if e["id"] != "driver"]

    def featurize_tasks(self) -> list[dict]:
        """The tasks of the featurize stage while it runs (status, executorId, attempt); [] before and after."""
        stages = self.ask("stages?status=active&details=true")
        return [task for stage in stages if stage["stageId"] == FEATURIZE_STAGE for task in stage["tasks"].values()]


def executor_on(worker: Worker, executors: list[dict]) -> dict | None:
    return next((e for e in executors if f":{worker.webui}/" in e.get("executorLogs", {}).get("stdout", "")), None)


@dataclass
class ClusterRun:
    code: int
    printed: str  # the driver's output
    seconds: float


def run_on_cluster(containers, master: str, endpoint: str, output: str, conf=(), while_running=None) -> ClusterRun:
    """spark-submit of the job to `master` in client mode, the driver in a container of its own
    (two executors of one core, TASKS featurize tasks). `while_running(driver)` is called once
    the driver has started; its UI (and REST API) is on only then."""
    ui = free_port() if while_running is not None else None
    settings = {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.cores.max": "2",
        "spark.executor.cores": "1",
        "spark.executor.memory": "1g",
        # the containers share the host's network, so Spark takes them for one host and would read
        # another executor's shuffle files from its own disk (each container has its own /tmp);
        # pods on Kubernetes have an address each, so this holds there without the setting
        "spark.shuffle.readHostLocalDisk": "false",
        **({"spark.ui.port": str(ui)} if ui else {"spark.ui.enabled": "false"}),
        **dict(conf),
    }
    started = time.monotonic()
    driver = containers.start(
        "driver",
        SPARK_SUBMIT,
        "--master",
        master,
        *[part for key, value in settings.items() for part in ("--conf", f"{key}={value}")],
        JOB,
        *s3_arguments(endpoint, output),
        "--partitions",
        str(TASKS),
        options=[*containers.hardened(), *s3_job_env()],
    )
    if while_running is not None:
        while_running(Driver(driver, ui))
    code = containers.wait(driver)
    return ClusterRun(code, containers.logs(driver), round(time.monotonic() - started, 1))


def assert_same_result_as_the_pod_run(output: str, done: ClusterRun) -> dict:
    """Exactly the pod run's rows: the same paths, each once, the same counts and k, `pca`
    within 1e-4 once each component's arbitrary sign is aligned; every partition's tally merged
    once. Returns the run's manifest."""
    assert done.code == 0, done.printed[-6000:]
    cluster, pod = results(output), results("pod")
    assert cluster.manifest["counts"] == pod.manifest["counts"]
    assert cluster.manifest["labels"] == pod.manifest["labels"]
    assert cluster.manifest["pca"]["k"] == pod.manifest["pca"]["k"]
    assert cluster.manifest["pca"]["fit_rows"] == 648  # no partition's moments merged twice, none missing
    assert cluster.manifest["featurize"]["partitions"] == TASKS
    cluster_rows, pod_rows = by_path(cluster), by_path(pod)
    assert cluster.features.num_rows == len(cluster_rows) == 648  # no row written twice
    assert sorted(cluster_rows) == sorted(pod_rows)
    paths = sorted(pod_rows)
    a, b = np.stack([cluster_rows[p] for p in paths]), np.stack([pod_rows[p] for p in paths])
    signs = np.sign(np.sum(a * b, axis=0))  # a component's sign is arbitrary; its values are not
    np.testing.assert_allclose(a * signs, b, atol=1e-4)
    staged = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{output}/_staging/")
    assert staged["KeyCount"] == 0  # the lost attempts' leftovers went with the staging
    return cluster.manifest


def wait_for(condition, what: str, containers, driver: Driver, timeout: float = 600, seen=None):
    """Poll `condition` until it returns something true, and return that; fail after `timeout`
    seconds, or once the driver has exited (saying what `seen()` returns, if given)."""
    deadline, polls = time.monotonic() + timeout, 0
    while not (found := condition()):
        polls += 1
        ended = polls % 5 == 0 and not containers.running(driver.container)
        if ended or time.monotonic() > deadline:
            why = "The driver exited before" if ended else f"After {timeout:.0f} s, no"
            pytest.fail(f"{why} {what}; {seen() if seen else ''}\n{containers.logs(driver.container)[-4000:]}")
        time.sleep(0.2)
    return found


def staged_tallies(output: str) -> int:
    """Featurize tasks finished so far: their tallies (stats-NNNNN.npz, each task's last file) in the run's staging."""
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{output}/_staging/")
    return sum(item["Key"].rsplit("/", 1)[1].startswith("stats-") for item in listed.get("Contents", []))


Snapshot = tuple[list[dict], list[dict]]


def featurize_snapshot(driver: Driver) -> Snapshot:
    """The driver's executors and the featurize stage's tasks, read one right after the other."""
    return driver.executors(), driver.featurize_tasks()


def tasks_on(worker: Worker, snapshot: Snapshot) -> Counter:
    """The statuses of the featurize tasks on the worker's executor (RUNNING, SUCCESS...)."""
    executors, tasks = snapshot
    executor = executor_on(worker, executors)
    return Counter(task["status"] for task in tasks if executor and task["executorId"] == executor["id"])


def settled(read, every: float = 0.5):
    """What `read` returns once it returns the same twice in a row, `every` seconds apart: the
    driver's view of a frozen executor, once its listener has caught up with what it received."""
    last = read()
    while True:
        time.sleep(every)
        if (now := read()) == last:
            return now
        last = now


def busy_worker(workers: list[Worker], snapshot: Snapshot) -> tuple[Worker, Counter] | None:
    """A worker whose executor runs a featurize task, as the driver sees it: one that has
    finished another before, if there is one."""
    busy = [(worker, tasks) for worker in workers if (tasks := tasks_on(worker, snapshot))["RUNNING"]]
    return max(busy, key=lambda found: found[1]["SUCCESS"] > 0, default=None)


def mid_featurize(containers, workers: list[Worker], driver: Driver) -> tuple[Worker, Counter]:
    """Once featurize has started: a worker whose executor runs a featurize task (busy_worker),
    polled from the stage's start, one snapshot of the driver's view per poll. On LiteRT a warm
    task is over within a fraction of a second (81 images at int8), so the first task of each
    executor, which starts its Python worker and loads the model, is often the one caught."""
    last: dict = {"workers": workers}

    def busy():
        last["executors and tasks"] = snapshot = featurize_snapshot(driver)
        return busy_worker(workers, snapshot)

    return wait_for(busy, "executor running a featurize task", containers, driver, seen=lambda: last)


def record_run(what: str, done: ClusterRun, manifest: dict) -> None:
    """The figures of a cluster run for the report: wall time (the driver's container, start to
    exit), the job's own time and featurize's, featurize's core-seconds."""
    record(f"{what} (s)", done.seconds)
    record(f"{what}: job (s)", manifest["timings_s"]["total"])
    record(f"{what}: featurize (s)", manifest["timings_s"]["featurize"])
    record(f"{what}: featurize core-seconds", manifest["cost"]["featurize_core_seconds"])


def executors_launched(containers, workers: list[Worker]) -> int:
    return sum("Asked to launch executor" in containers.logs(worker.container) for worker in workers)


def test_executors_in_containers_of_their_own_give_the_same_result(containers, pod_run, s3_sample):
    """A Spark standalone cluster: a master and two workers, each in its own container with
    its own /tmp, the driver in a fourth (client mode). Nothing is shared but S3."""
    master, workers = start_cluster(containers, 2)
    done = run_on_cluster(containers, master, s3_sample, "cluster")
    assert executors_launched(containers, workers) == 2  # each node ran an executor of the application
    manifest = assert_same_result_as_the_pod_run("cluster", done)
    record_run("cluster of containers run, 648 images", done, manifest)
    assert manifest["featurize"]["retried_tasks"] == 0


def test_a_worker_stopped_mid_featurize_hands_its_work_over_and_the_result_is_exact(containers, pod_run, s3_sample):
    """A spot node reclaimed, with decommissioning on: SIGPWR to a worker whose executor runs a
    featurize task (on Kubernetes, the executor pod's preStop hook sends it), then, once its
    executor has left or GRACE_S are up, SIGTERM, and SIGKILL 10 s later. The decommissioned
    executor takes no new task and finishes the one it runs; the spare worker gets a new
    executor; no task is lost, and the output is exactly the clean run's."""
    master, workers = start_cluster(containers, 3, decommission=True)
    seen: dict = {}

    def reclaim(driver: Driver) -> None:
        victim, seen["before"] = mid_featurize(containers, workers, driver)
        signalled = time.monotonic()
        containers.signal(victim.container, "PWR")
        seen["staged"] = staged_tallies("cluster-stopped")

        def gone() -> dict | None:  # the decommissioned executor, once the driver has removed it
            executor = executor_on(victim, driver.executors(dead=True))
            return executor if executor and not executor["isActive"] else None

        seen["after"] = wait_for(
            lambda: gone() or time.monotonic() > signalled + GRACE_S, "executor decommissioned", containers, driver
        )
        seen["left in (s)"] = round(time.monotonic() - signalled, 1)
        containers.stop(victim.container, grace=10)

    done = run_on_cluster(
        containers,
        master,
        s3_sample,
        "cluster-stopped",
        conf={"spark.decommission.enabled": "true"},
        while_running=reclaim,
    )
    manifest = assert_same_result_as_the_pod_run("cluster-stopped", done)
    record_run("cluster run with a worker stopped", done, manifest)
    record("worker stopped: SIGPWR until its executor left (s)", seen["left in (s)"])
    assert isinstance(seen["after"], dict), f"the executor was still there after {GRACE_S} s"
    finished_after = seen["after"]["completedTasks"] - seen["before"]["SUCCESS"]
    record("worker stopped: tasks its executor finished after SIGPWR", finished_after)
    assert seen["staged"] < TASKS  # signalled mid-featurize
    assert manifest["featurize"]["retried_tasks"] == 0  # nothing lost, nothing run twice
    assert finished_after >= 1  # the task it ran when the signal came finished there
    assert executors_launched(containers, workers) == 3  # the spare worker took over


def test_a_worker_killed_mid_featurize_costs_a_retried_task_and_the_result_is_exact(containers, pod_run, s3_sample):
    """A node gone at once: SIGKILL to a worker whose executor runs a featurize task (frozen
    first, so that the task cannot finish before the kill). Spark runs the lost task again
    elsewhere: its partition's files are written again under the same names and its tally is
    merged once; what the executor had finished stays done; the spare worker gets a new
    executor; the output is exactly the clean run's."""
    master, workers = start_cluster(containers, 3)
    seen: dict = {}

    def kill(driver: Driver) -> None:
        while True:
            victim, _ = mid_featurize(containers, workers, driver)
            if not containers.pause(victim.container):
                continue  # not frozen: try again
            seen["frozen"] = settled(lambda held=victim: tasks_on(held, featurize_snapshot(driver)))
            if seen["frozen"]["RUNNING"]:
                break  # frozen with a featurize task it cannot finish
            containers.unpause(victim.container)  # its task ended just before: try again
        containers.signal(victim.container, "KILL")

    done = run_on_cluster(containers, master, s3_sample, "cluster-killed", while_running=kill)
    manifest = assert_same_result_as_the_pod_run("cluster-killed", done)
    record_run("cluster run with a worker killed", done, manifest)
    record("worker killed: tasks lost", seen["frozen"]["RUNNING"])
    record("worker killed: partitions its executor had staged", seen["frozen"]["SUCCESS"])
    assert manifest["featurize"]["retried_tasks"] == seen["frozen"]["RUNNING"]  # run again, counted once
    assert executors_launched(containers, workers) == 3  # the spare worker took over


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


LEAN_IMAGE_LIMIT = 1.2e9  # bytes, as `podman images` counts them (issue #30)


def inspect(containers, image: str, field: str) -> str:
    return subprocess.run(
        [containers.engine, "image", "inspect", image, "--format", f"{{{{{field}}}}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_report_the_images(containers, tf_containers):
    """Figures for the closing note: both sizes, the lean image's layers, and what was left out.
    The -tf image is the lean image's layers plus its own: a node that pulled one fetches only
    the difference for the other."""
    lean, tf = (
        int(inspect(containers, containers.image, ".Size")),
        int(inspect(containers, tf_containers.image, ".Size")),
    )
    history = subprocess.run(
        [containers.engine, "history", containers.image, "--format", "{{.Size}}\t{{.CreatedBy}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    layers = [line.split("\t", 1) for line in history.splitlines() if line and not line.startswith("0B")]
    record("image size (MB)", round(lean / 1e6))
    record("-tf image size (MB)", round(tf / 1e6))
    record("layers over 1 MB", [f"{s} {c[:70]}" for s, c in layers if s.endswith(("MB", "GB"))])
    jars = Path(__import__("pyspark").__file__).parent / "jars"
    record(
        "left out: the pyspark wheel's copy of /opt/spark/jars (MB)",
        round(sum(p.stat().st_size for p in jars.iterdir()) / 1e6),
    )
    lean_layers = json.loads(inspect(containers, containers.image, "json .RootFS.Layers"))
    tf_layers = json.loads(inspect(containers, tf_containers.image, "json .RootFS.Layers"))
    assert tf_layers[: len(lean_layers)] == lean_layers and len(tf_layers) > len(lean_layers)
    assert lean <= LEAN_IMAGE_LIMIT, f"the lean image is {lean / 1e9:.2f} GB"
