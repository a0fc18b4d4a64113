"""Lean executors: the Python workers run the converted model on LiteRT and never import
TensorFlow; the driver converts once per run and ships the model; the terminal stays quiet."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
FAULTS = Path(__file__).resolve().parents[1] / "fakes" / "faults"

# What Spark, the JVM, TensorFlow, absl, XNNPACK and Keras print, as seen in a run's log.
CHATTER = re.compile(
    r"TensorSpec|WARN|INFO|oneDNN|absl|XNNPACK|TensorFlow Lite|tensorflow|SparkContext|log4j|"
    r"Setting default log level|setLogLevel|Traceback|Downloading data from|W0000|I0000"
)


def test_the_run_is_quiet_converts_once_on_the_driver_and_its_workers_never_import_tensorflow(
    sample_dir, weights, tmp_path
):
    """No converted model anywhere: the driver converts it (TensorFlow's chatter goes to the
    log), ships it, and the workers, whose own cache is empty and who cannot import TensorFlow
    (tests/faults/no_tensorflow_worker.py), run it on LiteRT."""
    driver_tmp, worker_tmp, logs = tmp_path / "driver-tmp", tmp_path / "worker-tmp", tmp_path / "logs"
    driver_tmp.mkdir()
    worker_tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(driver_tmp),
        "FRUITS_LOG_DIR": str(logs),
        "COLUMNS": "100",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
    }
    env.pop("FRUITS_TFLITE_DIR", None)
    output = tmp_path / "out"
    done = subprocess.run(
        [
            FRUITSCTL,
            "run",
            "--input",
            str(sample_dir),
            "--output",
            str(output),
            "--weights",
            weights,
            "--image-size",
            "96",
            "--run-id",
            "quiet-1",
            "--spark-conf",
            "spark.python.daemon.module=no_tensorflow_worker",
            "--spark-conf",
            f"spark.executorEnv.TMPDIR={worker_tmp}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    terminal = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((output / "manifest.json").read_text())["counts"]["ok"] > 600

    assert len(terminal) <= 30, "\n".join(terminal)
    chatter = [line for line in terminal if CHATTER.search(line)]
    assert not chatter, "\n".join(chatter)
    log = logs / "quiet-1.log"
    assert str(log) in re.sub(r"[\s│]", "", done.stdout), "the summary does not name the log"  # folded in a table
    text = log.read_text()
    assert "TensorSpec" in text and "XNNPACK" in text  # the driver converted; workers ran LiteRT

    assert len(list(driver_tmp.glob("fruits-tflite-*/*.tflite"))) == 1  # converted once, on the driver
    assert not list(worker_tmp.glob("**/*.tflite"))  # the workers used the shipped model
