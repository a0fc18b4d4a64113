"""The fixed photos the int8 backbone is calibrated on, and the digest that names them.

Full-integer quantization stores each tensor as int8 with one scale per tensor (per channel
for weights); the converter finds the activations' ranges by running the float model over a
representative set. The set here is fixed and part of the package (216 Fruits-360 photos, 12
of each of 18 classes, picked with a seed by .ci/calibration_photos.py), so every machine that
converts the model gets the same bytes, and the model's hash can tell two runs' features apart.

Why a few fruit photos suffice for any fruit: the ranges are per tensor, not per class, and
MobileNetV2's activations are ReLU6, bounded to 0..6 whatever the photo, so the calibration
mostly confirms bounds the architecture sets. Measured on the 81 classes of the Fruits-360
training split (63 of them absent from this set), held out by frame ranges: int8 and float32
features give the same 1-NN accuracy to within a few tenths of a point (docs/performance.md).
"""

import functools
import hashlib
from pathlib import Path

import numpy as np

from fruits.featurize.decode import decode_image
from fruits.settings.backbones import Backbone

PHOTOS = Path(__file__).with_name("calibration_photos")


def photo_files() -> list[Path]:
    files = sorted(PHOTOS.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"{PHOTOS} holds no calibration photos: reinstall the fruits-pipeline package.")
    return files


@functools.cache
def digest() -> str:
    """What identifies the set: a hash of its names and bytes (part of a converted int8 model's name)."""
    hasher = hashlib.sha256()
    for path in photo_files():
        hasher.update(path.name.encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()[:16]


def samples(backbone: Backbone, image_size: int) -> np.ndarray:
    """The photos as the backbone's input at `image_size`: decoded and normalised exactly as the
    featurize stage does it, float32 (N, S, S, 3)."""
    pixels = np.stack([decode_image(path.read_bytes(), image_size) for path in photo_files()])
    return backbone.preprocess(pixels)
