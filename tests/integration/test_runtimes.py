"""Converted TFLite models: baked for the image, kept on local disk, and never rebuilt from
Keras when one is found."""

import numpy as np
import pytest

from fruits.featurize import backbone_model, partitions, runtimes
from fruits.featurize.decode import decode_image
from fruits.settings.backbones import BACKBONES


@pytest.fixture
def no_loaded_models(monkeypatch):
    monkeypatch.setattr(backbone_model, "_LOADED", {})


def test_a_baked_model_serves_a_worker_that_never_builds_keras(tmp_path, weights, monkeypatch, no_loaded_models):
    baked = runtimes.bake(str(tmp_path / "baked"), "mobilenet_v2", 96, weights, "float32")
    assert baked.parent == tmp_path / "baked" and baked.stat().st_size > 1_000_000

    monkeypatch.setenv(runtimes.BAKED_DIR_ENV, str(baked.parent))
    monkeypatch.setattr(runtimes, "local_cache_dir", lambda: tmp_path / "fresh-pod-cache")
    monkeypatch.setattr(runtimes, "build_keras", lambda *args: pytest.fail("built Keras despite a baked model"))
    predict = backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 96, weights)
    images = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    features = partitions.featurize_batch(predict, BACKBONES["mobilenet_v2"], images, 4)
    assert features.shape == (3, 1280) and features.std() > 0.05
    assert not (tmp_path / "fresh-pod-cache").exists()  # nothing converted, nothing cached


def test_a_first_conversion_is_cached_for_the_machines_other_workers(tmp_path, weights, monkeypatch, no_loaded_models):
    monkeypatch.delenv(runtimes.BAKED_DIR_ENV, raising=False)
    monkeypatch.setattr(runtimes, "local_cache_dir", lambda: tmp_path / "cache")
    built = []
    real_build = runtimes.build_keras
    monkeypatch.setattr(runtimes, "build_keras", lambda self, *args: built.append(args) or real_build(self, *args))
    backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 32, weights)
    assert len(built) == 1 and len(list((tmp_path / "cache").glob("*.tflite"))) == 1

    backbone_model._LOADED.clear()  # another worker process on the same machine
    backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 32, weights)
    assert len(built) == 1


def test_the_cache_is_this_users_alone_and_a_file_that_does_not_match_its_hash_is_not_loaded(
    tmp_path, weights, monkeypatch, no_loaded_models
):
    """A .tflite file is code-like input: another local user must not be able to plant one."""
    monkeypatch.delenv(runtimes.BAKED_DIR_ENV, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setattr(runtimes, "local_cache_dir", lambda: cache)
    backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 32, weights)
    assert cache.stat().st_mode & 0o777 == 0o700
    (model,) = cache.glob("*.tflite")
    model.write_bytes(b"planted")  # altered after it was written: its recorded hash no longer matches
    built = []
    real_build = runtimes.build_keras
    monkeypatch.setattr(runtimes, "build_keras", lambda self, *args: built.append(args) or real_build(self, *args))
    backbone_model._LOADED.clear()
    backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 32, weights)
    assert len(built) == 1 and model.read_bytes() != b"planted"  # converted again, and the cache repaired
    cache.chmod(0o777)  # a folder others may write to is not used at all
    assert runtimes.private_cache() is None


def test_tf_runtime_weights_are_fetched_once_on_the_driver_and_loaded_from_the_shipped_copy(
    tmp_path, weights, monkeypatch, no_loaded_models
):
    """`--runtime tf` with ImageNet weights the image has not baked: the driver gets them once
    (here: the shared file stands in for the download) and the workers load the shipped bytes,
    never reaching for the internet themselves."""
    from types import SimpleNamespace

    from fruits.settings.backbones import WEIGHTS_DIR_ENV
    from fruits.settings.config import JobConfig

    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr(runtimes, "local_cache_dir", lambda: tmp_path / "worker-cache")
    real_build = runtimes.build_keras
    downloads = []

    def driver_build(self, image_size, source):
        downloads.append(source)
        return real_build(self, image_size, weights if source == "imagenet" else source)

    monkeypatch.setattr(runtimes, "build_keras", driver_build)
    shipped = backbone_model.prepare_backbone(JobConfig(weights="imagenet", image_size=32, runtime="tf"))
    assert downloads == ["imagenet"] and len(shipped) > 1_000_000

    def worker_build(self, image_size, source):
        assert source != "imagenet", "a worker tried to download the weights"
        return real_build(self, image_size, source)

    monkeypatch.setattr(runtimes, "build_keras", worker_build)
    shipped_copy = SimpleNamespace(value=shipped)
    predict = backbone_model.load_backbone(BACKBONES["mobilenet_v2"], 32, "imagenet", 1, "tf", shipped_copy)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert partitions.featurize_batch(predict, BACKBONES["mobilenet_v2"], images, 2).shape == (2, 1280)
    assert len(list((tmp_path / "worker-cache").glob("*.weights.h5"))) == 1


def test_tflite_and_tensorflow_runtimes_give_the_same_features(sample_dir, weights):
    from fruits.featurize.backbone_model import load_backbone
    from fruits.featurize.partitions import featurize_batch
    from fruits.settings.backbones import BACKBONES

    backbone = BACKBONES["mobilenet_v2"]
    images = np.stack([decode_image(p.read_bytes(), 96) for p in sorted(sample_dir.glob("*/*.jpg"))[::60]])
    tf_features = featurize_batch(load_backbone(backbone, 96, weights, 1, "tf"), backbone, images, 8)
    lite_features = featurize_batch(load_backbone(backbone, 96, weights, 1, "tflite"), backbone, images, 8)
    assert tf_features.shape == lite_features.shape == (len(images), 1280)
    assert tf_features.std() > 0.05
    np.testing.assert_allclose(lite_features, tf_features, atol=1e-3)
