"""decode_image on every kind of file a user may have, without Spark."""

import numpy as np
import pytest
from image_files import odd_files

from fruits.decode import BadImage, decode_image

FILES = odd_files()


@pytest.mark.parametrize("name", [n for n, (_, ok) in FILES.items() if ok])
def test_odd_but_valid_images_become_rgb_arrays_of_the_model_size(name):
    array = decode_image(FILES[name][0], 96)
    assert array.shape == (96, 96, 3) and array.dtype == np.uint8
    assert array.std() > 0  # real content, not a blank canvas


@pytest.mark.parametrize(
    "name, reason",
    [
        ("zero_bytes.jpg", "empty file"),
        ("truncated.jpg", "corrupt image"),
        ("text.jpg", "not an image"),
        ("absurd.png", "absurd dimensions 100000x100000"),
    ],
)
def test_unusable_files_raise_bad_image_with_a_reason(name, reason):
    with pytest.raises(BadImage, match=reason):
        decode_image(FILES[name][0], 96)


def test_transparency_is_composited_on_white():
    from PIL import Image

    clear = Image.new("RGBA", (50, 50), (255, 0, 0, 0))
    import io

    buffer = io.BytesIO()
    clear.save(buffer, format="PNG")
    assert (decode_image(buffer.getvalue(), 32) == 255).all()


def test_tflite_and_tensorflow_runtimes_give_the_same_features(sample_dir, weights):
    from fruits.backbones import BACKBONES
    from fruits.featurize import featurize_batch, load_model

    backbone = BACKBONES["mobilenet_v2"]
    images = np.stack([decode_image(p.read_bytes(), 96) for p in sorted(sample_dir.glob("*/*.jpg"))[::60]])
    tf_features = featurize_batch(load_model(backbone, 96, weights, 1, "tf"), backbone, images, 8)
    lite_features = featurize_batch(load_model(backbone, 96, weights, 1, "tflite"), backbone, images, 8)
    assert tf_features.shape == lite_features.shape == (len(images), 1280)
    assert tf_features.std() > 0.05
    np.testing.assert_allclose(lite_features, tf_features, atol=1e-3)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50", "vgg16"])
def test_preprocessing_equals_keras_preprocess_input(name):
    import importlib

    from fruits.backbones import BACKBONES

    backbone = BACKBONES[name]
    images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    keras_module = importlib.import_module(f"keras.applications.{backbone.keras_module}")
    expected = keras_module.preprocess_input(images.astype(np.float32))
    buffer = np.full((3, 8, 8, 3), np.nan, dtype=np.float32)  # a reused buffer is overwritten entirely
    np.testing.assert_allclose(backbone.preprocess(images, out=buffer), expected, atol=1e-5)
    np.testing.assert_allclose(buffer, expected, atol=1e-5)
