"""The phone export on the Fruits-360 sample run: real TensorFlow conversion, the files run on
LiteRT, parity with the run, the docs' device example in a process without TensorFlow."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.io.output import IN_PROGRESS, MANIFEST
from fruits.results.export import CLASSIFIER, EXPORT_JSON, FEATURIZER, LABELS, export_run
from fruits.settings.config import DEFAULTS
from support.console_text import flat

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def float_run(spark, sample_dir, weights, tmp_path_factory):
    """The sample at --precision float32: the export's graph computes the backbone in float, so
    its parity with the run is exact (to 1e-4) for a float32 run."""
    import pyarrow.parquet as pq

    from fruits.pipeline import run_job
    from fruits.settings.config import build_config

    output = tmp_path_factory.mktemp("float") / "out"
    config = build_config({"input": str(sample_dir), "output": str(output), "weights": weights, "precision": "float32"})
    manifest = run_job(spark, config)
    return output, manifest, pq.read_table(output / "features").to_pandas()


@pytest.fixture(scope="module")
def exported(float_run, tmp_path_factory):
    output, _, _ = float_run
    folder = tmp_path_factory.mktemp("export") / "phone"
    result = runner.invoke(app, ["export", str(output), "--to", str(folder), "--check", "0"])
    assert result.exit_code == 0, result.output
    return folder, json.loads((folder / EXPORT_JSON).read_text()), result.output


def test_the_featurizer_reproduces_the_runs_pca_for_every_image(exported, float_run):
    folder, description, output = exported
    _, manifest, _ = float_run
    assert sorted(p.name for p in folder.iterdir()) == sorted([FEATURIZER, CLASSIFIER, LABELS, EXPORT_JSON])
    parity = description["featurizer_parity"]
    assert parity["images"] == manifest["counts"]["ok"]  # --check 0: every image of the run
    assert parity["max_abs_diff"] <= 1e-4 * max(1.0, parity["max_abs_pca"]), parity
    assert description["k"] == manifest["pca"]["k"] and description["input"]["shape"] == [1, 96, 96, 3]
    assert "featurizer vs run" in flat(output)


def test_the_classifier_is_the_runs_logistic_head_and_labels_held_out_images(exported, float_run):
    folder, description, _ = exported
    head = description["classifier"]
    assert description["classifier_kind"] == "logistic"  # the default for a run with a head
    assert head["metric"] == "logistic, softmax" and head["test_images"] > 100
    assert head["test_images"] == float_run[1]["classifier"]["test_rows"]  # the job's held-out split
    assert head["top1"] >= 0.95, head  # on LiteRT, from the photos
    assert 0 < head["ms_per_photo_one_thread"] < 1000, head  # measured, one photo at a time
    assert abs(head["top1"] - float_run[1]["classifier"]["held_out_top1"]) <= 0.02, head
    assert (folder / LABELS).read_text().splitlines() == description["labels"]
    assert set(description["labels"]) == set(float_run[1]["labels"])
    assert description["run_precision"] == "float32" and description["quantize"] == "none"  # the run's own
    assert description["warnings"] == []  # the phone model labels as the run's head does


def test_an_int8_runs_float_export_says_so_and_still_labels_its_images(sample_run, tmp_path):
    """The default run is int8: a float phone graph's backbone differs from it by the
    quantization's noise, which the parity figures show, and the labels hold."""
    output, manifest, _ = sample_run
    assert manifest["backbone"]["precision"] == "int8"
    phone = tmp_path / "phone"
    description = export_run(str(output), phone, DEFAULTS, classifier="centroid", quantize="none", check=64)
    parity = description["featurizer_parity"]
    assert description["run_precision"] == "int8"
    assert 1e-4 * parity["max_abs_pca"] < parity["max_abs_diff"] < 0.25 * parity["max_abs_pca"], parity
    head = description["classifier"]  # the nearest centroid, asked for though the run has a head
    assert description["classifier_kind"] == "centroid" and head["metric"] in ("cosine", "euclidean")
    assert head["top1"] >= 0.9, head  # the sample's fruits are well apart (1-NN on the run: ~0.99)


def test_an_int8_run_exports_in_int8_unless_told_otherwise(sample_run, tmp_path):
    """A head fitted on an int8 backbone's features expects its noise (at 81 classes a float
    graph lost 6 points): without --quantize the export follows the run's precision."""
    output, _, _ = sample_run
    description = export_run(str(output), tmp_path / "phone", DEFAULTS, classifier="none", check=16)
    assert description["run_precision"] == "int8" and description["quantize"] == "int8"
    assert description["warnings"] == []  # no classifier measured, nothing to warn about
    assert "float_max_abs_diff" in description["featurizer_parity"]  # a quantized featurizer was measured


def test_int8_stays_within_a_point_of_float_and_is_smaller(float_run, exported, tmp_path):
    output, _, _ = float_run
    description = export_run(str(output), tmp_path / "int8", DEFAULTS, quantize="int8", check=64)
    head = description["classifier"]
    assert description["classifier_kind"] == "logistic"
    assert head["top1"] >= head["top1_float"] - 0.01, head
    assert description["file_bytes"][FEATURIZER] < exported[1]["file_bytes"][FEATURIZER] / 2


def test_the_exported_head_labels_the_runs_images_as_the_spark_pipeline_model_does(exported, float_run, spark):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import array_to_vector

    from fruits.featurize.decode import decode_image
    from fruits.fit.reduce import FEATURES_VECTOR
    from fruits.results.export import LiteModel

    folder, _, _ = exported
    output = float_run[0]
    rows = spark.read.parquet(str(output / "features"))
    rows = rows.select("path", array_to_vector("features").alias(FEATURES_VECTOR))
    predicted = PipelineModel.load(str(output / "model")).transform(rows).select("path", "predicted_label")
    by_spark = dict(predicted.toPandas().itertuples(index=False))
    phone, names = LiteModel((folder / CLASSIFIER).read_bytes()), (folder / LABELS).read_text().splitlines()
    paths = sorted(by_spark)[::3]
    on_phone = [names[int(phone(decode_image(Path(p.removeprefix("file:")).read_bytes(), 96)).argmax())] for p in paths]
    agree = np.mean([label == by_spark[path] for label, path in zip(on_phone, paths)])
    assert agree >= 0.98, agree


DEVICE_EXAMPLE = re.compile(r"```python\n(.*?)```", re.S)  # the one Python example of docs/export.md


def test_the_docs_device_example_labels_a_photo_with_litert_alone(exported, sample_dir, tmp_path):
    folder, _, _ = exported
    code = DEVICE_EXAMPLE.search((ROOT / "docs" / "export.md").read_text()).group(1)
    assert len(code.strip().splitlines()) <= 12
    shutil.copytree(folder, tmp_path / "phone")
    blocker = (
        "import sys\nfrom importlib.abc import MetaPathFinder\n"
        "class NoTF(MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'):\n"
        "            raise ImportError('TensorFlow imported on the device')\n"
        "sys.meta_path.insert(0, NoTF())\n"
    )
    for photo in (sorted((sample_dir / "Banana").glob("*.jpg"))[0], sorted((sample_dir / "Kiwi").glob("*.jpg"))[-1]):
        shutil.copy(photo, tmp_path / "photo.jpg")
        done = subprocess.run(
            [sys.executable, "-c", blocker + code], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == photo.parent.name


def test_an_s3_run_exports_too(s3_run_for_export, tmp_path):
    uri, config = s3_run_for_export
    description = export_run(uri, tmp_path / "phone", config, classifier="none", check=32)
    assert description["featurizer_parity"]["images"] == 32
    assert description["featurizer_parity"]["max_abs_diff"] <= 1e-4 * max(
        1.0, description["featurizer_parity"]["max_abs_pca"]
    )
    assert not (tmp_path / "phone" / CLASSIFIER).exists()


@pytest.fixture
def s3_run_for_export(spark, s3_server, sample_dir, weights):
    import boto3

    from fruits.pipeline import run_job
    from fruits.settings.config import build_config

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="export")
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg")) + sorted((sample_dir / "Banana").glob("*.jpg")):
        s3.upload_file(str(image), "export", f"photos/{image.parent.name}/{image.name}")
    config = build_config(
        {
            "input": "s3a://export/photos",
            "output": "s3a://export/runs/r1",
            "weights": weights,
            "s3_path_style": True,
            "s3_credentials": "static",
            "precision": "float32",
        }
    )
    run_job(spark, config)
    return "s3a://export/runs/r1", config


def _unfinished(tmp_path: Path, run: Path) -> Path:
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / IN_PROGRESS).write_text("{}")
    return folder


def _without_model(tmp_path: Path, run: Path) -> Path:
    shutil.copytree(run, tmp_path / "no-model")
    shutil.rmtree(tmp_path / "no-model" / "model")
    return tmp_path / "no-model"


def _made_with_tf(tmp_path: Path, run: Path) -> Path:
    shutil.copytree(run, tmp_path / "tf")
    manifest = json.loads((tmp_path / "tf" / MANIFEST).read_text())
    manifest["config"]["runtime"] = "tf"
    (tmp_path / "tf" / MANIFEST).write_text(json.dumps(manifest))
    return tmp_path / "tf"


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (_unfinished, [], "has not finished"),
        (_without_model, [], "changed after its run finished (model/"),
        (_made_with_tf, [], "was made with --runtime tf"),
        (None, ["--quantize", "int4"], "--quantize one of none, dynamic, int8"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(sample_run, tmp_path, make, extra, message):
    output, _, _ = sample_run
    run = make(tmp_path, output) if make else output
    result = runner.invoke(app, ["export", str(run), "--to", str(tmp_path / "phone"), *extra])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert not (tmp_path / "phone").exists()


def test_an_export_never_replaces_other_files(sample_run, tmp_path):
    output, _, _ = sample_run
    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["export", str(output), "--to", str(tmp_path / "phone"), "--classifier", "none"])
    assert result.exit_code == 2 and "holds other files (notes.txt)" in flat(result.output)
    assert (tmp_path / "phone" / "notes.txt").read_text() == "mine"
