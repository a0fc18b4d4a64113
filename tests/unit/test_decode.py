"""decode_image on every kind of file a user may have, without Spark."""

import numpy as np
import pytest

from fruits.featurize.decode import BadImage, decode_image
from support.image_files import odd_files

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


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50", "vgg16"])
def test_preprocessing_equals_keras_preprocess_input(name):
    import importlib

    from fruits.settings.backbones import BACKBONES

    backbone = BACKBONES[name]
    images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    keras_module = importlib.import_module(f"keras.applications.{backbone.keras_module}")
    expected = keras_module.preprocess_input(images.astype(np.float32))
    buffer = np.full((3, 8, 8, 3), np.nan, dtype=np.float32)  # a reused buffer is overwritten entirely
    np.testing.assert_allclose(backbone.preprocess(images, out=buffer), expected, atol=1e-5)
    np.testing.assert_allclose(buffer, expected, atol=1e-5)


def _exif_rotated_jpeg() -> bytes:
    """A wide gradient JPEG whose EXIF says: rotate 90 degrees to display (orientation 6)."""
    from PIL import Image

    from support.image_files import _gradient, jpeg_bytes

    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg_bytes(_gradient((120, 60)), exif=exif.tobytes())


@pytest.mark.parametrize("subsampling", [0, 2])  # 4:4:4 and 4:2:0 chroma
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("progressive", [False, True])
def test_the_fast_jpeg_path_gives_pillows_pixels(subsampling, mode, progressive):
    from fruits.featurize.decode import _fast_jpeg, decode_with_pillow
    from support.image_files import _gradient, jpeg_bytes

    data = jpeg_bytes(_gradient((100, 100)).convert(mode), subsampling=subsampling, progressive=progressive)
    for size in (96, 100, 160):  # downscaled, as is, upscaled
        fast = _fast_jpeg(data, size)
        assert fast is not None, "this plain small JPEG should take the fast path"
        np.testing.assert_array_equal(fast, decode_with_pillow(data, size))


def test_the_fast_path_gives_pillows_pixels_on_real_photos(sample_dir):
    from fruits.featurize.decode import _fast_jpeg, decode_with_pillow

    for path in sorted(sample_dir.glob("*/*.jpg"))[::40]:
        data = path.read_bytes()
        np.testing.assert_array_equal(_fast_jpeg(data, 96), decode_with_pillow(data, 96))


@pytest.mark.parametrize("name", ["cmyk.jpg", "large_photo.jpeg", "truncated.jpg", "rgba.png"])
def test_what_the_fast_path_cannot_match_is_left_to_pillow(name):
    from fruits.featurize.decode import _fast_jpeg

    assert _fast_jpeg(FILES[name][0], 96) is None


def test_exif_orientation_is_applied():
    from fruits.featurize.decode import _fast_jpeg

    data = _exif_rotated_jpeg()
    assert _fast_jpeg(data, 32) is None
    upright = decode_image(data, 32)
    # The gradient ran left to right in red; turned 90 degrees clockwise it runs top to bottom.
    red = upright[..., 0].astype(int)
    assert red[-1, :].mean() - red[0, :].mean() > 100
    assert abs(red[:, -1].mean() - red[:, 0].mean()) < 20
