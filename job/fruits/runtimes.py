"""Inference runtimes for a backbone: one call, a float32 batch in, features out.

`tflite` runs the model converted to TensorFlow Lite with the XNNPACK CPU kernels: 3.4x
the images/s of TensorFlow's own kernels for MobileNetV2 at 128 px on one core here, with
features equal to 3e-5. `tf` runs the Keras model itself.

Converting costs ~11 s of a core (plus ~2 s to build the Keras model it starts from), in
every Python worker of a fresh executor pod. So converted models are kept: in the image,
baked at build time (`python -m fruits.runtimes DIR`, read through $FRUITS_TFLITE_DIR),
and on local disk after a first conversion. A worker that finds one never builds Keras.

    python -m fruits.runtimes --weights-dir W --tflite-dir T   # what the image bakes (see --help)
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

BAKED_DIR_ENV = "FRUITS_TFLITE_DIR"  # read-only folder of converted models (the image's)


class KerasRuntime:
    def __init__(self, model, threads: int):
        self.model = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # predict_on_batch, not predict: predict builds a tf.data pipeline per call whose
        # threads compete with the other Spark tasks' models (35% slower here).
        return np.asarray(self.model.predict_on_batch(batch))


class TFLiteRuntime:
    def __init__(self, converted: bytes, threads: int):
        import tensorflow as tf

        self._interpreter = tf.lite.Interpreter(model_content=converted, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: tuple | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self._shape:  # few shapes (padded batch sizes): reallocate rarely
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, dtype=np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def weights_identity(weights: str) -> str:
    """What identifies a weights file's content cheaply (path, size, mtime)."""
    if weights == "imagenet" or not os.path.isfile(weights):
        return weights
    stat = os.stat(weights)
    return f"{os.path.abspath(weights)}:{stat.st_size}:{stat.st_mtime_ns}"


def converted_name(backbone: str, image_size: int, weights: str) -> str:
    """The file name of a converted model: its settings, weights and TensorFlow version."""
    import tensorflow as tf

    key = f"{backbone}|{image_size}|{weights_identity(weights)}|{tf.__version__}"
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".tflite"


def local_cache_dir() -> Path:
    """Where workers keep the models they converted (shared by the machine's workers and runs)."""
    return Path(tempfile.gettempdir()) / "fruits-tflite"


def converted_model(name: str, build: Callable[[], object]) -> bytes:
    """The TFLite model called `name`: baked, cached on local disk, or converted from the
    Keras model `build()` returns (then cached, so this machine's other workers skip it)."""
    import tensorflow as tf

    for folder in filter(None, (os.environ.get(BAKED_DIR_ENV), local_cache_dir())):
        if (Path(folder) / name).is_file():
            return (Path(folder) / name).read_bytes()
    converted = tf.lite.TFLiteConverter.from_keras_model(build()).convert()
    _write_atomically(local_cache_dir() / name, converted)
    return converted


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, target)  # readers never see half a file


def bake(folder: str, backbone: str, image_size: int, weights: str) -> Path:
    """Convert one model into `folder` (for $FRUITS_TFLITE_DIR); returns the file written."""
    from fruits.backbones import BACKBONES

    name = converted_name(backbone, image_size, weights)
    target = Path(folder) / name
    _write_atomically(target, converted_model(name, lambda: BACKBONES[backbone].build(image_size, weights)))
    return target


def bake_image_models(weights_dir: str, tflite_dir: str, backbone: str, image_size: int,
                      weights_file: str | None = None) -> list[Path]:
    """What the image bakes: the ImageNet weights of `backbone` at `image_size` (downloaded,
    or read from `weights_file` where there is no internet) in $FRUITS_WEIGHTS_DIR's layout,
    then the TFLite model converted from them."""
    from fruits.backbones import BACKBONES, WEIGHTS_DIR_ENV, baked_weights_file

    model = BACKBONES[backbone].build(image_size, weights_file or "imagenet")
    target = baked_weights_file(weights_dir, backbone, image_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(target))
    os.environ[WEIGHTS_DIR_ENV] = weights_dir  # `imagenet` now resolves to the file just written
    return [target, bake(tflite_dir, backbone, image_size, "imagenet")]


if __name__ == "__main__":
    import argparse

    from fruits.config import DEFAULTS

    parser = argparse.ArgumentParser(prog="python -m fruits.runtimes",
                                     description="Bake the default model's weights and TFLite file (the image's build).")
    parser.add_argument("--weights-dir", required=True, help="Where to write the ImageNet weights ($FRUITS_WEIGHTS_DIR).")
    parser.add_argument("--tflite-dir", required=True, help="Where to write the TFLite model ($FRUITS_TFLITE_DIR).")
    parser.add_argument("--image-size", type=int, default=DEFAULTS.image_size)
    parser.add_argument("--weights-file", help="The ImageNet backbone weights as a Keras weights file (offline builds).")
    args = parser.parse_args()
    for path in bake_image_models(args.weights_dir, args.tflite_dir, DEFAULTS.model, args.image_size, args.weights_file):
        print(path)
