"""The pretrained CNN backbones the job can featurize with, behind one interface.

Keras is imported lazily: the driver, the CLI and the config code use this registry
without paying TensorFlow's import cost.
"""

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    name: str
    feature_dim: int
    keras_module: str  # keras.applications.<keras_module>.<keras_class>
    keras_class: str

    def _module(self):
        return importlib.import_module(f"keras.applications.{self.keras_module}")

    def build(self, image_size: int, weights: str):
        """The Keras model without its top, global average pooling, weights loaded.

        `weights` is "imagenet" (Keras downloads and caches them) or a Keras weights file.
        """
        constructor = getattr(self._module(), self.keras_class)
        shape = (image_size, image_size, 3)
        if weights == "imagenet":
            return constructor(include_top=False, pooling="avg", input_shape=shape, weights="imagenet")
        model = constructor(include_top=False, pooling="avg", input_shape=shape, weights=None)
        model.load_weights(weights)
        return model

    def preprocess(self, batch):
        """The model's own `preprocess_input` on a float32 batch (N, H, W, 3) in 0..255."""
        return self._module().preprocess_input(batch)


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("mobilenet_v2", 1280, "mobilenet_v2", "MobileNetV2"),
        Backbone("resnet50", 2048, "resnet50", "ResNet50"),
        Backbone("vgg16", 512, "vgg16", "VGG16"),
    )
}
