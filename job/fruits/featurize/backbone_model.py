"""The backbone, ready to run: prepared once per run on the driver, loaded once per Python worker.

The driver prepares the backbone (`prepare_backbone`: the converted TFLite file, or the
downloaded ImageNet weights for `--runtime tf`) and ships it with the tasks as a Spark
broadcast, which an executor fetches once and a worker reads only if its machine has no
copy: weights are downloaded and models converted on the driver, never per executor.

The loaded backbones are a module global of this importable module on purpose: Spark pickles
a closure (or anything in __main__) with every task, which would rebuild the model per task;
a module global lives as long as the reused Python worker.
"""

import os
import tempfile
import threading
from functools import partial

from fruits.featurize import runtimes
from fruits.featurize.runtimes import (
    KerasRuntime,
    TFLiteRuntime,
    cached_by_content,
    converted_model,
    converted_name,
    has_stored_model,
    has_tensorflow,
    stored_model,
)
from fruits.settings.backbones import BACKBONES, Backbone, baked_imagenet
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError, worker_user_error

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_LOADED: dict[tuple, KerasRuntime | TFLiteRuntime] = {}
_THREADS_SET = False


def _match_tf_threads(threads: int) -> None:
    """TF threads = the cores Spark gave this task (set once, before TF's runtime starts)."""
    global _THREADS_SET
    if _THREADS_SET:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # runtime already initialised in this process: keep its setting
    _THREADS_SET = True


def prepare_backbone(config: JobConfig) -> bytes | None:
    """On the driver, before any task: what the workers need to load the backbone without
    TensorFlow's converter or the internet. For `tflite`, the converted model (baked, cached,
    or converted here once); for `tf` with ImageNet weights that the image has not baked, the
    weights file (downloaded here once). None when the workers need nothing shipped."""
    backbone = BACKBONES[config.backbone]
    build = partial(build_checked, backbone, config.image_size, config.weights, UserError)
    if config.runtime == "tflite":
        name = converted_name(backbone.name, config.image_size, config.weights, config.precision)
        return converted_model(
            name, converter(backbone, config.image_size, config.weights, config.precision, UserError)
        )
    if config.weights == "imagenet" and baked_imagenet(backbone.name, config.image_size) is None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "imagenet.weights.h5")
            build().save_weights(path)
            with open(path, "rb") as handle:
                return handle.read()
    return None


def _backbone_settings(config: JobConfig) -> tuple:
    return config.backbone, config.weights, config.image_size, config.runtime, config.precision


# Where TensorFlow is missing, the image that has it (set in the lean image; empty elsewhere)
TF_IMAGE_ENV = "FRUITS_TF_IMAGE"


def tensorflow_missing(needs: str) -> str:
    """The sentence for a setting that needs TensorFlow where there is none."""
    image = os.environ.get(TF_IMAGE_ENV)
    if image:
        return (
            f"{needs} needs TensorFlow, which this image leaves out (it bakes the default backbone and "
            f"image size only): run it on the {image} image (make image-tf), or keep those settings."
        )
    return f"{needs} needs TensorFlow, which is not installed here: pip install 'fruits-pipeline[tf]'."


def check_servable(config: JobConfig) -> None:
    """Refuse, before Spark starts, settings this installation cannot run: `--runtime tf`, or a
    model that is neither baked nor cached, where TensorFlow is missing."""
    if has_tensorflow():
        return
    if config.runtime == "tf":
        raise UserError(tensorflow_missing("--runtime tf"))
    if not has_stored_model(converted_name(config.backbone, config.image_size, config.weights, config.precision)):
        weights = "ImageNet weights" if config.weights == "imagenet" else f"the weights {config.weights!r}"
        raise UserError(
            tensorflow_missing(
                f"Converting {config.backbone} at {config.image_size} px with {weights} to {config.precision}"
            )
        )


def converter(backbone: Backbone, image_size: int, weights: str, precision: str, error=worker_user_error):
    """A function converting the backbone to a TFLite model at `precision` (bytes)."""

    def convert() -> bytes:
        if not has_tensorflow():
            raise error(tensorflow_missing(f"Converting {backbone.name} at {image_size} px to {precision}"))
        model = build_checked(backbone, image_size, weights, error, fresh=True)
        return runtimes.convert_keras(model, backbone, image_size, precision)

    return convert


class BackboneInBackground:
    """prepare_backbone(config) on a thread of its own, started before Spark: TensorFlow's
    import and a conversion (~20 s of one core when nothing is baked or cached) then overlap
    the JVM's start and the listing instead of following them. A daemon thread: a run that
    fails before featurizing exits without waiting for it (fruitsctl's entry leaves with
    os._exit while one is alive: see `still_preparing`)."""

    THREAD_NAME = "prepare-backbone"

    def __init__(self, config: JobConfig):
        check_servable(config)
        self._settings = _backbone_settings(config)
        self._result: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._prepare, args=(config,), name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    def _prepare(self, config: JobConfig) -> None:
        try:
            self._result = prepare_backbone(config)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def prepares_for(self, config: JobConfig) -> bool:
        return self._settings == _backbone_settings(config)

    def result(self) -> bytes | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def still_preparing() -> bool:
    """Whether a BackboneInBackground thread of this process is still running."""
    return any(thread.name == BackboneInBackground.THREAD_NAME for thread in threading.enumerate())


def load_backbone(
    backbone: Backbone,
    image_size: int,
    weights: str,
    threads: int = 1,
    runtime: str = "tflite",
    shipped=None,
    precision: str = "float32",
) -> KerasRuntime | TFLiteRuntime:
    """The backbone's predict function for these settings, built at most once per Python process.

    `shipped` is the driver's `prepare_backbone` result as a Spark broadcast (or None): read
    only when this machine has no copy, so a worker of a baked image never unpickles it.
    """
    key = (backbone.name, image_size, weights, runtime, precision)
    if key not in _LOADED:
        build = partial(build_checked, backbone, image_size, weights)
        if runtime == "tflite":  # LiteRT: TensorFlow is imported only to convert (no shipped model)
            name = converted_name(backbone.name, image_size, weights, precision)
            converted = stored_model(name) or (shipped.value if shipped is not None else None)
            convert = converter(backbone, image_size, weights, precision)
            _LOADED[key] = TFLiteRuntime(converted or converted_model(name, convert), threads)
        else:
            _match_tf_threads(threads)
            if shipped is not None:
                build = partial(build_checked, backbone, image_size, _shipped_weights(shipped.value))
            _LOADED[key] = KerasRuntime(build(), threads)
    return _LOADED[key]


def _shipped_weights(data: bytes) -> str:
    """The driver's weights file, written once to this user's private cache; its path."""
    path = cached_by_content(data, ".weights.h5")
    if path is None:
        raise worker_user_error("No private cache folder for the model's weights; check that TMPDIR is writable.")
    return str(path)


def build_checked(backbone: Backbone, image_size: int, weights: str, error=worker_user_error, fresh: bool = False):
    """The backbone's Keras model; a settings problem becomes `error(sentence)` (a worker's
    user error in tasks, a plain UserError on the driver and in the export). `fresh`: Keras's
    names reset first, as a conversion needs (runtimes.fresh_keras)."""
    try:
        return (runtimes.fresh_keras if fresh else runtimes.build_keras)(backbone, image_size, weights)
    except Exception as exc:  # every cause here is a settings problem
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights == "imagenet":
            raise error(
                f"Could not get the ImageNet weights for {backbone.name} ({reason}); without internet "
                "access pass --weights PATH to a Keras weights file."
            ) from None
        raise error(
            f"Could not load weights {weights!r} into {backbone.name} at {image_size}px ({reason}); "
            "check that the file holds weights for this --backbone."
        ) from None
