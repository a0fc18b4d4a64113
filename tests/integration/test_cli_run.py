"""`fruitsctl run` through Typer's CliRunner, and the spark-submit entry point as a real process."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fruits.cli import run as run_module
from fruits.cli.main import app
from fruits.ingest.demo_data import DEMO_CLASSES, make_demo_dataset
from support.console_text import flat

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "images")


def test_run_without_input_uses_the_generated_demo_set(spark, demo_dir, weights, tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "DEMO_DATA", demo_dir)
    result = runner.invoke(app, ["run", "--weights", weights, "--image-size", "96", "--output", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "Run complete" in result.output and "images read" in result.output
    images = 24 * len(DEMO_CLASSES)
    assert re.search(rf"featurize ━+ {images}/{images} images", flat(result.output))  # the bar counts images
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["counts"]["ok"] == images
    assert set(manifest["labels"]) == set(DEMO_CLASSES)


def test_run_reads_options_from_a_config_file(spark, demo_dir, weights, tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text(f"input: {demo_dir}\noutput: {tmp_path / 'o'}\nweights: {weights}\nimage-size: 96\nk: 4\n")
    result = runner.invoke(app, ["run", "--config", str(config), "--k", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["pca"]["k"] == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variance", "2"], "--variance must be between 0.01 and 1.0; got 2.0"),
        (["--backbone", "alexnet"], "--backbone must be one of mobilenet_v2, resnet50, vgg16"),
        (["--weights", "/no/such/file.h5"], "Weights file '/no/such/file.h5' does not exist"),
        (["--input", "/no/such/folder", "--weights", "W"], "Input path '/no/such/folder' does not exist"),
        (["--config", "/no/such.yaml"], "Config file '/no/such.yaml' does not exist"),
    ],
)
def test_user_errors_are_one_sentence_and_exit_2(spark, weights, tmp_path, args, message):
    args = [weights if a == "W" else a for a in args]
    result = runner.invoke(app, ["run", "--output", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in flat(result.output)
    assert "Traceback" not in result.output


def test_a_value_of_the_wrong_type_is_refused_by_the_parser():
    result = runner.invoke(app, ["run", "--image-size", "large"])
    assert result.exit_code == 2 and "Invalid value for '--image-size'" in flat(result.output)


def spark_submit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        str(ROOT / "job" / "main.py"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_spark_submit_entry_point_runs_the_job(demo_dir, weights, tmp_path):
    done = spark_submit(
        "--input", str(demo_dir), "--output", str(tmp_path / "o"), "--weights", weights, "--image-size", "96"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["counts"]["ok"] == 24 * len(DEMO_CLASSES)
    assert (tmp_path / "o" / "manifest.json").is_file()


def test_spark_submit_entry_point_reports_user_errors_with_exit_2(tmp_path):
    done = spark_submit("--input", str(tmp_path), "--output", str(tmp_path / "o"), "--image-size", "huge")
    assert done.returncode == 2
    printed = done.stdout + done.stderr  # spark-submit merges the Python process's stderr into stdout
    assert "Error: --image-size must be int, got 'huge'." in printed
    assert "Traceback" not in printed


def test_the_progress_bar_counts_images_as_the_workers_finish_each_batch(spark, demo_dir, weights, tmp_path):
    """The Python workers report every batch of images they finish (not once per task): the
    bar moves while a task runs."""
    from rich.console import Console

    from fruits.pipeline import run_job
    from fruits.progress import SparkProgress
    from fruits.settings.config import build_config

    progress = SparkProgress(spark, Console(file=io.StringIO()))
    config = build_config(
        {"input": str(demo_dir), "output": str(tmp_path / "o"), "weights": weights, "batch_size": 8, "partitions": 2}
    )
    run_job(spark, config, progress)
    images = 24 * len(DEMO_CLASSES)
    assert progress.reported["featurize"] == (images, 2 * 8)  # 60 images a task: 7 batches of 8, then 1 of 4


def test_an_unwritable_log_folder_is_one_sentence_and_nothing_is_written(weights, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setenv("FRUITS_LOG_DIR", str(blocker / "logs"))
    result = runner.invoke(app, ["run", "--weights", weights, "--output", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Cannot write the run's log file" in flat(result.output) and "FRUITS_LOG_DIR" in flat(result.output)
    assert not (tmp_path / "o").exists()
