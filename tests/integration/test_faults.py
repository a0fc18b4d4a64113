"""Fault injection with real Spark: killed drivers and workers, hostile folders, unreachable S3,
a full disk. Each test asserts on the files left behind, not only on the exit code."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.io.output import IN_PROGRESS, MANIFEST, STAGED, check_separate
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.settings.errors import UserError
from support.console_text import flat
from support.process_tree import kill_tree

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
FAULTS = Path(__file__).resolve().parents[1] / "fakes" / "faults"
CLASSES = ("Kiwi", "Lemon", "Banana", "Cherry 1")
ODD_NAME = "out [/x] 100% 🍎"  # Rich markup, a printf-style %, an emoji
runner = CliRunner()


@pytest.fixture(scope="module")
def small_input(sample_dir, tmp_path_factory):
    """144 real images: 4 classes of the Fruits-360 sample."""
    root = tmp_path_factory.mktemp("faults") / "images"
    for label in CLASSES:
        shutil.copytree(sample_dir / label, root / label)
    return root


def job_options(input_path, output, weights, **extra) -> dict:
    # no head unless a test asks: its fit is not what these tests are about (test_classifier_head.py)
    options = {"input": str(input_path), "output": str(output), "weights": weights, "image_size": 96, "k": 10}
    return {**options, "classifier": "none", **extra}


@pytest.fixture(scope="module")
def reference(spark, small_input, weights, tmp_path_factory):
    """The rows of an undisturbed run on small_input."""
    output = tmp_path_factory.mktemp("reference") / "out"
    run_job(spark, build_config(job_options(small_input, output, weights)))
    return rows(output)


def rows(output: Path):
    return pq.read_table(output / "features").to_pandas().sort_values("path").reset_index(drop=True)


def assert_same_rows(output: Path, reference) -> None:
    """Each image exactly once, with the features of an undisturbed run."""
    found = rows(output)
    assert list(found["path"]) == list(reference["path"])
    np.testing.assert_allclose(np.stack(found["features"]), np.stack(reference["features"]), atol=1e-5)
    assert len(found["pca"][0]) == len(reference["pca"][0])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def fruitsctl_run(*args, env=None, prefix=(), timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, FRUITSCTL, "run", "--spark-conf", "spark.ui.enabled=false", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# ------------------------------------------------------------------ files the job never wrote
def test_a_stale_marker_beside_user_files_is_refused_and_the_files_stay(spark, small_input, weights, tmp_path):
    output = tmp_path / "mine"
    (output / "photos").mkdir(parents=True)
    (output / "thesis.docx").write_text("four years of work")
    (output / "photos" / "a.jpg").write_bytes(b"holiday")
    (output / IN_PROGRESS).write_text("{}")
    before = snapshot(output)
    for overwrite in (False, True):
        with pytest.raises(UserError, match=r"holds entries this job did not write \('photos', 'thesis.docx'\)"):
            run_job(spark, build_config(job_options(small_input, output, weights, overwrite=overwrite)))
        assert snapshot(output) == before


@pytest.mark.parametrize(
    "relation, output_of",
    [
        ("is the input", lambda source: source),
        ("contains the input", lambda source: source.parent),
        ("lies inside the input", lambda source: source / "runs" / "r1"),
    ],
)
def test_an_output_overlapping_the_input_is_refused_before_anything_is_touched(
    spark, small_input, weights, relation, output_of
):
    before = snapshot(small_input)
    with pytest.raises(UserError, match=f"lies inside|{relation}"):
        run_job(spark, build_config(job_options(small_input, output_of(small_input), weights, overwrite=True)))
    assert snapshot(small_input) == before


def test_overlap_is_found_across_spellings_and_on_s3(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    with pytest.raises(UserError, match="is the input"):
        check_separate(
            Store.at(f"file://{tmp_path}/data", S3Settings()), Store.at(str(tmp_path / "link"), S3Settings())
        )
    s3 = (("region", "us-east-1"),)
    with pytest.raises(UserError, match="lies inside the input"):
        check_separate(Store("bucket/photos", "s3a", s3), Store("bucket/photos/runs", "s3", s3))
    check_separate(Store("bucket/photos", "s3a", s3), Store("bucket/photos-runs", "s3a", s3))  # a sibling prefix
    check_separate(Store("bucket/photos", "s3a", s3), Store(str(tmp_path / "data"), "file"))  # S3 in, local out


# ------------------------------------------------------------------ every file accounted for
@pytest.fixture(scope="module")
def tangled_run(spark, sample_dir, weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("tangled") / "images"
    kiwi = root / "Kiwi"
    kiwi.mkdir(parents=True)
    images = sorted((sample_dir / "Kiwi").glob("*.jpg"))[:3]
    for image in images:
        shutil.copy(image, kiwi / image.name)
    shutil.copy(images[0], kiwi / "_IMG_0001.jpg")  # cameras and exports name files like this
    (kiwi / "up").symlink_to("..")  # a loop: Kiwi/up/Kiwi/up/...
    (root / "Lemon").symlink_to("Kiwi")  # a second way to the same folder
    (kiwi / "gone.jpg").symlink_to("missing.jpg")  # dangling
    os.mkfifo(kiwi / "pipe.jpg")  # reading it would block forever
    shutil.copy(images[1], kiwi / ".hidden.jpg")
    (kiwi / "notes.txt").write_text("not an image")
    output = tmp_path_factory.mktemp("tangled-out") / "out"
    manifest = run_job(spark, build_config(job_options(root, output, weights, k=2)))
    errors = pq.read_table(output / "errors").to_pandas()
    return (
        root,
        manifest,
        rows(output),
        {Path(path).name: error for path, error in zip(errors["path"], errors["error"])},
    )


def test_each_image_is_read_once_whatever_links_lead_to_it(tangled_run):
    _root, manifest, features, _ = tangled_run
    names = sorted(Path(path).name for path in features["path"])
    assert len(names) == 4 and "_IMG_0001.jpg" in names and features["path"].is_unique
    assert manifest["labels"] == {"Kiwi": 4}


def test_links_that_loop_dangle_or_repeat_and_special_files_are_error_rows(tangled_run):
    _, manifest, _, errors = tangled_run
    assert errors["up"].startswith("symlink loop")
    assert errors["Lemon"].startswith("symlink to a folder already read")
    assert errors["gone.jpg"].startswith("dangling symlink")
    assert errors["pipe.jpg"] == "not a regular file (a device, pipe or socket)"
    assert manifest["counts"] == {
        "read": 8,
        "ok": 4,
        "failed": 4,
        "skipped": {"hidden (name starts with '.')": 1, "not an image (extension)": 1},
        "read_retries": 0,
    }


def test_unreadable_files_and_folders_are_error_rows_and_odd_names_reach_the_terminal(small_input, weights, tmp_path):
    """Through the CLI as a process: root would read anything, so it runs without the
    capabilities that let root ignore file permissions."""
    root = tmp_path / "images"
    shutil.copytree(small_input / "Kiwi", root / "Kiwi")
    shutil.copy(next((small_input / "Lemon").glob("*.jpg")), root / "Kiwi" / "locked.jpg")
    shutil.copytree(small_input / "Lemon", root / "Secret")
    (root / "Kiwi" / "locked.jpg").chmod(0)
    (root / "Secret").chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    output = tmp_path / ODD_NAME
    done = fruitsctl_run(
        "--input",
        str(root),
        "--output",
        str(output),
        "--weights",
        weights,
        "--image-size",
        "96",
        "--k",
        "2",
        prefix=prefix,
    )
    (root / "Secret").chmod(0o755)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "Traceback" not in printed
    assert "".join(ODD_NAME.split()) in "".join(flat(done.stdout).split())  # printed whole, though wrapped
    errors = pq.read_table(output / "errors").to_pandas()
    reasons = {Path(path).name: error for path, error in zip(errors["path"], errors["error"])}
    assert reasons == {
        "locked.jpg": "cannot read: Permission denied",
        "Secret": "cannot list this folder: Permission denied",
    }
    assert len(rows(output)) == 36


def test_a_path_with_markup_characters_is_printed_as_is():
    result = runner.invoke(app, ["run", "--input", f"/nowhere/{ODD_NAME}", "--weights", "imagenet"])
    assert result.exit_code == 2
    assert f"Input path '/nowhere/{ODD_NAME}' does not exist" in flat(result.output)


# ------------------------------------------------------------------ killed processes
def test_a_killed_python_worker_costs_a_retry_not_the_run(small_input, weights, reference, tmp_path):
    marker = tmp_path / "killed"
    output = tmp_path / "out"
    done = fruitsctl_run(
        *_args(small_input, output, weights),
        "--spark-conf",
        "spark.python.daemon.module=kill_first_worker",
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
            "FRUITS_TEST_KILL_MARKER": str(marker),
        },
    )
    assert marker.exists(), "no worker was killed: the fault was not injected"
    assert done.returncode == 0, done.stdout + done.stderr
    assert_same_rows(output, reference)
    manifest = json.loads((output / MANIFEST).read_text())
    assert manifest["featurize"]["retried_tasks"] == 1  # the killed worker's task, run again
    assert manifest["counts"]["ok"] == manifest["pca"]["fit_rows"] == len(reference)  # its partition counted once


def _args(source, output, weights, *extra) -> list[str]:
    return [
        "--classifier",
        "none",
        "--input",
        str(source),
        "--output",
        str(output),
        "--weights",
        weights,
        "--image-size",
        "96",
        "--k",
        "10",
        *extra,
    ]


def test_a_driver_killed_mid_featurize_is_resumed_by_its_retry_and_replaced_by_another_run(
    spark, small_input, weights, reference, tmp_path
):
    """The operator retries a failed driver with the same run id (the application's name): the
    retry takes its claim back at once and keeps the partitions the dead driver finished. A run
    with another id is refused while the dead run's claim is fresh, and replaces the dead run's
    output whole once its lease has run out. Both give the exact rows."""
    outputs = {}
    lease_s = 10
    for retry in ("same run", "another run"):
        output = outputs[retry] = tmp_path / retry.replace(" ", "-")
        staging = output / STAGED / "app-1"
        driver = subprocess.Popen(
            [
                FRUITSCTL,
                "run",
                "--spark-conf",
                "spark.ui.enabled=false",
                "--run-id",
                "app-1",
                *_args(small_input, output, weights, "--partitions", "16"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "FRUITS_OUTPUT_LEASE_S": str(lease_s)},
        )
        try:
            deadline = time.monotonic() + 300
            while len(list(staging.glob("stats-*.npz"))) < 2 and driver.poll() is None:
                assert time.monotonic() < deadline, "no featurize task finished within 300 s"
                time.sleep(0.01)
        finally:
            kill_tree(driver.pid)  # the driver, its JVM and its Python workers at once, as a node loss would
            driver.wait()
        killed_at = time.monotonic()
        assert not (output / MANIFEST).exists(), "the run finished before it could be killed"
        assert (output / IN_PROGRESS).exists()
        finished = len(list(staging.glob("stats-*.npz")))
        time.sleep(1)
        assert len(list(staging.glob("stats-*.npz"))) == finished, "a Python worker outlived its driver"
        run_id = "app-1" if retry == "same run" else "app-2"
        config = build_config(job_options(small_input, output, weights, partitions=16, run_id=run_id))
        if retry == "another run":
            with pytest.raises(UserError, match="is being written by run 'app-1'"):
                run_job(spark, config)
            time.sleep(max(0.0, lease_s + 1 - (time.monotonic() - killed_at)))
        rerun = run_job(spark, config)
        assert rerun["featurize"]["reused_partitions"] == (finished if retry == "same run" else 0)
        assert 2 <= finished < 16 or retry == "another run"
        assert rerun["counts"]["ok"] == len(reference)
        assert_same_rows(output, reference)
        assert not (output / STAGED).exists() and not (output / IN_PROGRESS).exists()
        assert sorted(p.name for p in output.iterdir()) == ["errors", "features", "manifest.json", "model"]


# ------------------------------------------------------------------ storage faults
class Blackhole:
    """A TCP server that accepts connections and never answers."""

    def __enter__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def __exit__(self, *_):
        self.socket.close()


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("endpoint", ["refuses connections", "never answers"])
def test_an_unreachable_s3_endpoint_fails_in_bounded_time(spark, weights, tmp_path, monkeypatch, endpoint):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with Blackhole() as silent:
        url = closed_port() if endpoint == "refuses connections" else silent
        config = build_config(
            job_options(
                "s3a://photos/in",
                tmp_path / "out",
                weights,
                s3_endpoint=url,
                s3_credentials="static",
                s3_path_style=True,
            )
        )
        started = time.monotonic()
        with pytest.raises(UserError, match=f"Cannot reach the S3 endpoint {url} for 's3a://photos/in'"):
            run_job(spark, config)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()


def test_irsa_without_a_token_fails_before_any_request(spark, weights, tmp_path, monkeypatch):
    for name in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = build_config(job_options("s3a://photos/in", tmp_path / "out", weights, s3_credentials="irsa"))
    with pytest.raises(
        UserError,
        match="irsa needs the pod's web identity token, but AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not set",
    ):
        run_job(spark, config)
    assert not (tmp_path / "out").exists()


def test_a_full_disk_ends_in_one_sentence_and_no_output_that_looks_complete(small_input, weights, tmp_path):
    """The output on a 400 kB tmpfs (the features of 144 images need ~750 kB), mounted in a
    private mount namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    output = disk / "run"
    unshare = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    command = (
        f"mount -t tmpfs -o size=400k tmpfs {disk} && {FRUITSCTL} run --spark-conf spark.ui.enabled=false "
        f"--input '{small_input}' --output '{output}' --weights '{weights}' --image-size 96 --k 10; "
        f"status=$?; ls -A {disk} > {tmp_path / 'left'}; ls -A {output} > {tmp_path / 'left_in_run'}; "
        f"tail -n 1 {output}/_logs/*-driver.log > {tmp_path / 'kept_log_ends'}; exit $status"
    )
    done = subprocess.run([*unshare, "sh", "-c", command], capture_output=True, text=True, timeout=600)
    printed = flat(done.stdout + done.stderr)
    assert done.returncode == 2, printed
    assert "Error: A disk is full (No space left on device) while the job writes" in printed
    assert "Traceback" not in printed
    # the run created the output folder and removed all it wrote but the log it keeps of why
    assert (tmp_path / "left").read_text() == "run\n"
    assert (tmp_path / "left_in_run").read_text() == "_logs\n"
    assert (tmp_path / "kept_log_ends").read_text().startswith("Error: A disk is full (No space left on device)")


# ------------------------------------------------------------------ options the data cannot honour
def test_k_beyond_the_features_is_refused_and_beyond_the_images_is_kept_smaller(spark, sample_dir, weights, tmp_path):
    with pytest.raises(
        UserError, match="--k 5000 is more than the 1280 features of mobilenet_v2: give --k 1280 or less"
    ):
        build_config(job_options(sample_dir, tmp_path / "o", weights, k=5000))
    source = tmp_path / "in" / "Kiwi"
    source.mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        shutil.copy(image, source / image.name)
    options = job_options(tmp_path / "in", tmp_path / "o", weights, k=10, classifier="logistic")
    manifest = run_job(spark, build_config(options))
    assert manifest["pca"]["k"] == 3 and manifest["pca"]["k_requested"] == 10
    assert manifest["warnings"] == [
        "--k 10 asked for more components than 4 images of 1280 features can give: kept k = 3.",
        # one label: nothing to tell apart, so the run keeps the scaler and PCA and says so
        "No classifier head: the rows could not be split into a train and a held-out part with two "
        "labels or more; the model holds the scaler and PCA only.",
    ]
    assert manifest["classifier"] is None
    assert json.loads((tmp_path / "o" / MANIFEST).read_text())["pca"]["k"] == 3
