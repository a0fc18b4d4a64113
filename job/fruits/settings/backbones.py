"""The catalogue of pretrained CNN backbones the job can featurize with: names, feature
sizes, the Keras class of each and its input preprocessing. Nothing here imports Keras
(fruits.featurize.runtimes builds the models): the CLI and the config code read it for free.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict


class _Mode(TypedDict):
    bgr: bool
    scale: float
    offset: tuple[float, float, float]


# Keras's preprocess_input modes: "tf" scales to -1..1; "caffe" is BGR minus the ImageNet mean.
_TF_MODE = _Mode(bgr=False, scale=1 / 127.5, offset=(-1.0, -1.0, -1.0))
_CAFFE_MODE = _Mode(bgr=True, scale=1.0, offset=(-103.939, -116.779, -123.68))

# A read-only folder of ImageNet weights baked into the image: `imagenet` is loaded from it
# by path when it holds the model's file, never through Keras's download cache (which
# moves to /tmp when its folder is not writable, and then downloads).
WEIGHTS_DIR_ENV = "FRUITS_WEIGHTS_DIR"


def baked_weights_file(folder: str | Path, backbone: str, image_size: int) -> Path:
    return Path(folder) / f"{backbone}-{image_size}px-imagenet.weights.h5"


def baked_imagenet(backbone: str, image_size: int) -> Path | None:
    """The baked ImageNet weights for this backbone and size, if the image has them."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    path = baked_weights_file(folder, backbone, image_size) if folder else None
    return path if path and path.is_file() else None


@dataclass(frozen=True)
class Backbone:
    name: str
    feature_dim: int
    keras_module: str  # keras.applications.<keras_module>.<keras_class>
    keras_class: str
    bgr: bool
    scale: float
    offset: tuple[float, float, float]

    def preprocess(self, images: Any, out: Any = None) -> Any:
        """uint8 RGB images (N, H, W, 3) -> the float32 input the model was trained on.

        Equal to Keras's `preprocess_input`, in two passes into `out` (a reusable buffer):
        Keras's version costs a sixth of the model's own time per image.
        """
        import numpy as np

        source = images[..., ::-1] if self.bgr else images
        out = np.multiply(source, np.float32(self.scale), out=out, dtype=np.float32)
        out += np.asarray(self.offset, dtype=np.float32)
        return out


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("mobilenet_v2", 1280, "mobilenet_v2", "MobileNetV2", **_TF_MODE),
        Backbone("resnet50", 2048, "resnet50", "ResNet50", **_CAFFE_MODE),
        Backbone("vgg16", 512, "vgg16", "VGG16", **_CAFFE_MODE),
    )
}
