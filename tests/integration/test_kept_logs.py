"""The driver's log kept with the output (`_logs/`): a finished run names it in its manifest,
a failed run's ends with the sentence that stopped it, and a refused run leaves none behind."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from fruits.io.output import LOGS, MANIFEST
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.write.run_log import FileLog

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")


def test_a_finished_run_keeps_its_log_and_names_it(spark, sample_dir, weights, tmp_path):
    images = tmp_path / "images" / "Kiwi"
    images.mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").iterdir())[:4]:
        shutil.copy(image, images / image.name)
    chatter = tmp_path / "chatter.log"
    chatter.write_text("Spark says hello\n")
    output = tmp_path / "out"
    options = {"input": str(images.parent), "output": str(output), "weights": weights, "image_size": 32, "k": 2}
    manifest = run_job(spark, build_config(options), log=FileLog(chatter))
    assert manifest["log"].startswith(f"{LOGS}/{manifest['run_id']}-") and manifest["log"].endswith("-driver.log")
    assert (output / manifest["log"]).read_text() == "Spark says hello\nRun complete.\n"


def test_a_failed_run_keeps_its_log_ending_with_why_and_the_next_run_may_use_the_output(tmp_path, sample_dir, weights):
    broken = tmp_path / "broken"
    for label in ("Kiwi", "Lemon"):
        (broken / label).mkdir(parents=True)
        (broken / label / "photo.jpg").write_bytes(b"not a JPEG at all")
    output = tmp_path / "out"
    command = [FRUITSCTL, "run", "--input", str(broken), "--output", str(output), "--weights", weights]
    command += ["--image-size", "32", "--run-id", "nightly-1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert not (output / MANIFEST).exists()
    (kept,) = (output / LOGS).iterdir()
    assert kept.name.startswith("nightly-1-")
    text = kept.read_text()
    assert text.splitlines()[-1].startswith("Error: Only 0 of 2 images could be decoded")
    assert "Spark" in text  # the local run's own chatter: Spark's and TensorFlow's messages

    # an output holding only kept logs is still this job's: the next run writes into it
    (images := tmp_path / "good" / "Kiwi").mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").iterdir())[:3]:
        shutil.copy(image, images / image.name)
    command = [FRUITSCTL, "run", "--input", str(images.parent), "--output", str(output), "--weights", weights]
    command += ["--image-size", "32", "--k", "2", "--run-id", "nightly-2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name.split("-")[1] for p in (output / LOGS).iterdir()) == ["1", "2"]


def test_a_run_refused_before_it_holds_the_output_keeps_no_log_there(tmp_path, sample_dir, weights):
    (images := tmp_path / "in" / "Kiwi").mkdir(parents=True)
    shutil.copy(next((sample_dir / "Kiwi").iterdir()), images)
    output = tmp_path / "theirs"
    output.mkdir()
    (output / "notes.txt").write_text("not a run's output")
    command = [FRUITSCTL, "run", "--input", str(images.parent), "--output", str(output), "--weights", weights]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
    assert done.returncode == 2 and "entries this job did not write" in done.stderr
    assert sorted(p.name for p in output.iterdir()) == ["notes.txt"]
