"""--precision: the int8 backbone (full-integer, calibrated on the package's fixed photos) and
float32, real TensorFlow conversions and LiteRT; runs that would mix the two, or two models
of one precision, are refused in one sentence."""

import json
import shutil

import numpy as np
import pytest

from fruits.featurize import backbone_model, calibration, runtimes
from fruits.featurize.decode import decode_image
from fruits.featurize.runtimes import TFLiteRuntime, convert_keras, fresh_keras, model_digest
from fruits.io.output import MANIFEST
from fruits.results.export import export_run
from fruits.settings.backbones import BACKBONES
from fruits.settings.config import DEFAULTS, build_config
from fruits.settings.errors import UserError

MOBILENET = BACKBONES["mobilenet_v2"]


def test_int8_converts_to_the_same_bytes_every_time_a_third_of_float32_with_float_input_and_output(weights, sample_dir):
    first = convert_keras(fresh_keras(MOBILENET, 32, weights), MOBILENET, 32, "int8")
    again = convert_keras(fresh_keras(MOBILENET, 32, weights), MOBILENET, 32, "int8")
    as_float = convert_keras(fresh_keras(MOBILENET, 32, weights), MOBILENET, 32, "float32")
    assert model_digest(first) == model_digest(again)  # the hash can tell two runs' models apart
    assert len(first) < len(as_float) / 2.5

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=first)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert sum(t["dtype"] == np.int8 for t in interpreter.get_tensor_details()) > 100  # int8 inside

    photos = sorted(sample_dir.glob("*/*.jpg"))[::40]
    batch = MOBILENET.preprocess(np.stack([decode_image(p.read_bytes(), 32) for p in photos]))
    quantized, exact = TFLiteRuntime(first, 1)(batch), TFLiteRuntime(as_float, 1)(batch)
    cosine = (quantized * exact).sum(axis=1) / (np.linalg.norm(quantized, axis=1) * np.linalg.norm(exact, axis=1))
    assert cosine.min() > 0.9, cosine


def test_the_calibration_photos_are_the_seeded_pick_and_name_the_int8_model():
    assert len(calibration.photo_files()) == 216
    int8 = runtimes.converted_name("mobilenet_v2", 96, "imagenet", "int8")
    assert int8 != runtimes.converted_name("mobilenet_v2", 96, "imagenet", "float32")
    calibration.digest.cache_clear()
    assert runtimes.converted_name("mobilenet_v2", 96, "imagenet", "int8") == int8


def test_a_run_records_its_precision_and_the_hash_of_the_model_it_ran(sample_run):
    _, manifest, _ = sample_run
    assert manifest["config"]["precision"] == DEFAULTS.precision == "int8"
    backbone = manifest["backbone"]
    assert backbone["precision"] == "int8"
    stored = runtimes.stored_model(runtimes.converted_name("mobilenet_v2", 96, backbone["weights"], "int8"))
    assert stored is not None and backbone["model_sha256"] == model_digest(stored)


@pytest.fixture
def altered_run(sample_run, tmp_path):
    """A copy of the sample run whose manifest says another model made it."""

    def altered(**backbone) -> str:
        copy = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(sample_run[0], copy)
        manifest = json.loads((copy / MANIFEST).read_text())
        manifest["backbone"].update(backbone)
        if "precision" in backbone:
            manifest["config"]["precision"] = backbone["precision"]
        (copy / MANIFEST).write_text(json.dumps(manifest))
        return str(copy)

    return altered


def test_runs_that_would_mix_precisions_or_models_are_refused_in_one_sentence(
    spark, sample_run, sample_dir, weights, altered_run, tmp_path
):
    from fruits.pipeline import run_job

    def run(**options) -> None:
        layers = {"input": str(sample_dir), "output": str(tmp_path / "new"), "weights": weights, **options}
        run_job(spark, build_config(layers))

    float_run = altered_run(precision="float32", model_sha256="0" * 64)
    with pytest.raises(UserError, match=r"was made with --precision float32, this run uses int8"):
        run(incremental_from=float_run)
    other_model = altered_run(model_sha256="f" * 64)
    with pytest.raises(UserError, match=r"featurized by another int8 backbone model \(SHA-256 ffffffffffff"):
        run(incremental_from=other_model)
    with pytest.raises(UserError, match=r"--apply-model .* another int8 backbone model"):
        run(apply_model=other_model)
    with pytest.raises(UserError, match=r"export of .* another int8 backbone model"):
        export_run(other_model, tmp_path / "phone", DEFAULTS)
    assert not (tmp_path / "new").exists() and not (tmp_path / "phone").exists()  # nothing written


def test_runtime_tf_is_float32_and_refuses_an_explicit_int8():
    assert build_config({"runtime": "tf"}).precision == "float32"
    with pytest.raises(UserError, match=r"--precision int8 runs on LiteRT"):
        build_config({"runtime": "tf", "precision": "int8"})


def test_where_tensorflow_is_missing_what_needs_it_is_refused_before_spark_naming_the_tf_image(monkeypatch, tmp_path):
    """The lean image's rule (the image test runs it for real, without TensorFlow installed)."""
    monkeypatch.setattr(backbone_model, "has_tensorflow", lambda: False)
    monkeypatch.setenv(runtimes.BAKED_DIR_ENV, str(tmp_path))  # nothing baked
    monkeypatch.setattr(runtimes, "local_cache_dir", lambda: tmp_path / "empty-cache")
    monkeypatch.setenv(backbone_model.TF_IMAGE_ENV, "fruits-pipeline:9-tf")
    with pytest.raises(UserError, match=r"--runtime tf needs TensorFlow, .* run it on the fruits-pipeline:9-tf image"):
        backbone_model.check_servable(build_config({"runtime": "tf"}))
    with pytest.raises(UserError, match=r"Converting resnet50 at 96 px .* fruits-pipeline:9-tf"):
        backbone_model.check_servable(build_config({"backbone": "resnet50"}))
    monkeypatch.delenv(backbone_model.TF_IMAGE_ENV)
    with pytest.raises(UserError, match=r"pip install 'fruits-pipeline\[tf\]'"):
        backbone_model.check_servable(build_config({}))
    baked = tmp_path / runtimes.converted_name("mobilenet_v2", 96, "imagenet", "int8")
    baked.write_bytes(b"a baked model")
    backbone_model.check_servable(build_config({}))  # baked: served without TensorFlow
