"""The chart's SparkApplication, rendered by Helm's engine, runs the real job (spark-submit,
and the job's own entry point) on the Fruits-360 sample."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helm_python import Chart

from fruits.settings.config import build_config
from support.chart_render import CHART, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chart():
    return Chart.load(str(CHART))


def test_the_rendered_arguments_and_conf_run_the_job_locally(chart, sample_dir, weights, tmp_path):
    values = {"job": {"input": str(sample_dir), "output": str(tmp_path / "out"), "weights": weights, "imageSize": 96}}
    spec = render(chart, values)["SparkApplication"][0]["spec"]
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
    ]
    for key, value in spec["sparkConf"].items():
        command += ["--conf", f"{key}={value}"]
    command += [str(ROOT / "job" / "main.py"), *spec["arguments"]]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["ok"] == 648 and manifest["run_id"] == "fruits-fruits-pipeline"


def test_a_rerun_of_the_same_application_replaces_its_own_output(chart, spark, sample_dir, weights, tmp_path):
    """helm upgrade or a GitOps sync that changes the spec: the operator reruns the application
    under the same name, on the same output. It must complete, not fail on the finished run."""
    from fruits.entrypoint import argument_parser
    from fruits.pipeline import run_job

    source = tmp_path / "in" / "Kiwi"
    source.mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        (source / image.name).write_bytes(image.read_bytes())
    manifests = []
    for k in (2, 3):  # the second sync changed the spec
        values = {"job": {"input": str(tmp_path / "in"), "output": str(tmp_path / "run"), "weights": weights, "k": k}}
        arguments = render(chart, values)["SparkApplication"][0]["spec"]["arguments"]
        parsed = {
            key: value for key, value in vars(argument_parser().parse_args(arguments)).items() if key != "config_file"
        }
        manifests.append(run_job(spark, build_config(parsed)))
    assert [m["pca"]["k"] for m in manifests] == [2, 3] and manifests[1]["config"]["overwrite"] is True
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["pca"]["k"] == 3
