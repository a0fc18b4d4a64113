"""Inference runtimes for a backbone: one call, a float32 batch in, features out.

`tflite` runs the model converted to TensorFlow Lite on LiteRT (`ai-edge-litert`, the
interpreter TensorFlow's own `tf.lite` now points to) with the XNNPACK CPU kernels: 3.4x the
images/s of TensorFlow's own kernels for MobileNetV2 at 128 px on one core here. A worker
running it never imports TensorFlow: 0.1 s and ~150 MB instead of 2.8 s and ~690 MB.
`tf` runs the Keras model itself.

A `tflite` model is float32 or int8 (`--precision`): full-integer quantization, weights and
activations in int8 with float32 input and output, calibrated on a fixed set of photos
(fruits.featurize.calibration): 1.7x the images/s of float32 for MobileNetV2 at 96 px here,
a third of its size, and the same 1-NN accuracy.

Converting needs TensorFlow and costs ~11 s of a core (plus ~2 s to build the Keras model).
So it happens at most once per run, on the driver (`backbone_model.prepare_backbone`), which ships
the file to the executors with the tasks; and converted models are kept: in the image, baked
at build time (read through $FRUITS_TFLITE_DIR), and on local disk after a first conversion.

    python -m fruits.featurize.runtimes --weights-dir W --tflite-dir T   # what the image bakes (see --help)
"""

import hashlib
import importlib.util
import os
import re
import stat
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fruits.settings.backbones import Backbone

BAKED_DIR_ENV = "FRUITS_TFLITE_DIR"  # read-only folder of converted models (the image's)
PRECISIONS = ("int8", "float32")


def build_keras(backbone: "Backbone", image_size: int, weights: str):
    """The backbone's Keras model without its top, global average pooling, weights loaded.

    `weights` is "imagenet" (baked into the image, else downloaded and cached by Keras) or a
    Keras weights file.
    """
    import importlib

    from fruits.settings.backbones import baked_imagenet

    constructor = getattr(importlib.import_module(f"keras.applications.{backbone.keras_module}"), backbone.keras_class)
    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        baked = baked_imagenet(backbone.name, image_size)
        if baked is None:
            return constructor(include_top=False, pooling="avg", input_shape=shape, weights="imagenet")
        weights = str(baked)
    model = constructor(include_top=False, pooling="avg", input_shape=shape, weights=None)
    model.load_weights(weights)
    return model


class KerasRuntime:
    def __init__(self, model, threads: int):
        self.model = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # predict_on_batch, not predict: predict builds a tf.data pipeline per call whose
        # threads compete with the other Spark tasks' models (35% slower here).
        return np.asarray(self.model.predict_on_batch(batch))


class TFLiteRuntime:
    def __init__(self, converted: bytes, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=converted, num_threads=threads)
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


def has_tensorflow() -> bool:
    """Whether TensorFlow can be imported here (the lean image and a base install have none)."""
    return importlib.util.find_spec("tensorflow") is not None


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read from its package metadata (no import); without
    TensorFlow, the version the package pins (its `tf` extra): the one that converted the
    models the image baked, whose names must come out the same in an image without it."""
    for distribution in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    from fruits import declared_requirements

    for requirement in declared_requirements():
        if pinned := re.match(r"tensorflow(?:-cpu)?\s*==\s*([\w.]+)", requirement):
            return pinned.group(1)
    return "none"


def converted_name(backbone: str, image_size: int, weights: str, precision: str) -> str:
    """The file name of a converted model: its settings, weights, TensorFlow version and
    precision (for int8, also the calibration set's digest)."""
    parts = [backbone, str(image_size), weights_identity(weights), tensorflow_version(), precision]
    if precision == "int8":
        from fruits.featurize import calibration

        parts.append(calibration.digest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32] + ".tflite"


def convert_keras(model, backbone: "Backbone", image_size: int, precision: str) -> bytes:
    """The Keras model as a TFLite model at `precision` (int8: calibrated on the fixed photos)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        from fruits.featurize import calibration

        photos = calibration.samples(backbone, image_size)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([photos[i : i + 1]] for i in range(len(photos)))
        # every op in int8 (no float fallback); input and output stay float32, so the workers
        # feed and read the same arrays at either precision
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def model_digest(converted: bytes) -> str:
    """The content hash of a converted model, as the manifest records it."""
    return hashlib.sha256(converted).hexdigest()


def local_cache_dir() -> Path:
    """Where this user's workers keep the models they converted (shared by their runs). A
    .tflite file is code-like input to the interpreter: the folder is per user and 0700, so
    that no other local user can place a model there."""
    return Path(tempfile.gettempdir()) / f"fruits-tflite-{os.getuid()}"


def private_cache() -> Path | None:
    """local_cache_dir(), created 0700 if missing; None when it exists but is not a folder
    owned by this user and closed to others (then nothing is read from or written to it)."""
    folder = local_cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()  # a symlink planted in its place is refused, not followed
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached(folder: Path, name: str, verified: bool) -> bytes | None:
    """The model file in `folder`, if there; from the cache only if its content hash matches the
    one recorded when it was written (a partial or altered file is converted again)."""
    try:
        data = (folder / name).read_bytes()
        if verified and (folder / f"{name}.sha256").read_text().strip() != _digest(data):
            return None
        return data
    except OSError:
        return None


def has_stored_model(name: str) -> bool:
    """Whether this machine has the model called `name` without converting it (cheap: no read)."""
    baked = os.environ.get(BAKED_DIR_ENV)
    if baked and (Path(baked) / name).is_file():
        return True
    return (local_cache_dir() / f"{name}.sha256").is_file()


def stored_model(name: str) -> bytes | None:
    """The TFLite model called `name` if this machine has it: baked (the image's, read-only),
    or cached by this user on local disk."""
    baked = os.environ.get(BAKED_DIR_ENV)
    if baked and (data := _cached(Path(baked), name, verified=False)) is not None:
        return data
    cache = private_cache()
    if cache is not None and (data := _cached(cache, name, verified=True)) is not None:
        return data
    return None


def converted_model(name: str, convert: Callable[[], bytes]) -> bytes:
    """The TFLite model called `name`: stored (baked or cached), or what `convert()` returns,
    then cached, so this user's later runs on the machine skip the conversion."""
    if (data := stored_model(name)) is not None:
        return data
    converted = convert()
    cache = private_cache()
    if cache is not None:
        _write_atomically(cache / name, converted)
        _write_atomically(cache / f"{name}.sha256", _digest(converted).encode())
    return converted


def cached_by_content(data: bytes, suffix: str) -> Path | None:
    """`data` as a file of this user's private cache named by its content hash (written once,
    atomically); its path, or None without a private cache."""
    folder = private_cache()
    if folder is None:
        return None
    target = folder / f"{_digest(data)[:32]}{suffix}"
    if not target.exists():
        _write_atomically(target, data)
    return target


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer: two threads of one process (a refused run's background
    # conversion and the next run's) may write the same target at once
    handle, partial = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, target)  # readers never see half a file
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def bake(folder: str, backbone: str, image_size: int, weights: str, precision: str) -> Path:
    """Convert one model into `folder` (for $FRUITS_TFLITE_DIR); returns the file written."""
    from fruits.settings.backbones import BACKBONES

    name = converted_name(backbone, image_size, weights, precision)
    target = Path(folder) / name
    chosen = BACKBONES[backbone]
    _write_atomically(
        target,
        converted_model(
            name, lambda: convert_keras(fresh_keras(chosen, image_size, weights), chosen, image_size, precision)
        ),
    )
    return target


def fresh_keras(backbone: "Backbone", image_size: int, weights: str):
    """build_keras after resetting Keras's layer-name counters: the names are part of the
    converted file, so a model converted second in a process would otherwise hash apart."""
    import keras

    keras.backend.clear_session()
    return build_keras(backbone, image_size, weights)


def bake_image_models(
    weights_dir: str, tflite_dir: str, backbone: str, image_size: int, weights_file: str | None = None
) -> list[Path]:
    """What the image bakes: the ImageNet weights of `backbone` at `image_size` (downloaded,
    or read from `weights_file` where there is no internet) in $FRUITS_WEIGHTS_DIR's layout,
    then the TFLite models converted from them, one per precision."""
    from fruits.settings.backbones import BACKBONES, WEIGHTS_DIR_ENV, baked_weights_file

    model = build_keras(BACKBONES[backbone], image_size, weights_file or "imagenet")
    target = baked_weights_file(weights_dir, backbone, image_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(target))
    os.environ[WEIGHTS_DIR_ENV] = weights_dir  # `imagenet` now resolves to the file just written
    return [target, *(bake(tflite_dir, backbone, image_size, "imagenet", precision) for precision in PRECISIONS)]


if __name__ == "__main__":
    import argparse

    from fruits.settings.config import DEFAULTS

    parser = argparse.ArgumentParser(
        prog="python -m fruits.featurize.runtimes",
        description="Bake the default backbone's weights and TFLite files (the image's build).",
    )
    parser.add_argument(
        "--weights-dir", required=True, help="Where to write the ImageNet weights ($FRUITS_WEIGHTS_DIR)."
    )
    parser.add_argument("--tflite-dir", required=True, help="Where to write the TFLite models ($FRUITS_TFLITE_DIR).")
    parser.add_argument("--image-size", type=int, default=DEFAULTS.image_size)
    parser.add_argument(
        "--weights-file", help="The ImageNet backbone weights as a Keras weights file (offline builds)."
    )
    args = parser.parse_args()
    for path in bake_image_models(
        args.weights_dir, args.tflite_dir, DEFAULTS.backbone, args.image_size, args.weights_file
    ):
        print(path)
