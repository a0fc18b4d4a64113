"""Featurize: decode, resize and run the CNN backbone, batched, inside Spark tasks.

The model cache is a module global of this importable module on purpose: Spark pickles a
closure (or anything in __main__) with every task, which would rebuild the model per
task; a module global lives as long as the reused Python worker (GUIDE.md).
"""

import os
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame

from fruits.backbones import BACKBONES, Backbone
from fruits.config import JobConfig
from fruits.decode import BadImage, decode_image
from fruits.errors import worker_user_error
from fruits.runtimes import RUNTIMES, weights_identity

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FEATURIZED_SCHEMA = "path string, label string, split string, features array<float>, error string"

_MODELS: dict[tuple, object] = {}
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


def load_model(backbone: Backbone, image_size: int, weights: str, threads: int = 1, runtime: str = "tflite"):
    """The backbone's predict function for these settings, built at most once per Python process."""
    key = (backbone.name, image_size, weights, runtime)
    if key not in _MODELS:
        _match_tf_threads(threads)
        try:
            model = backbone.build(image_size, weights)
        except Exception as exc:  # noqa: BLE001 - every cause here is a settings problem
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if weights == "imagenet":
                raise worker_user_error(
                    f"Could not get the ImageNet weights for {backbone.name} ({reason}); without internet "
                    "access pass --weights PATH to a Keras weights file."
                ) from None
            raise worker_user_error(
                f"Could not load weights {weights!r} into {backbone.name} at {image_size}px ({reason}); "
                "check that the file holds weights for this --model."
            ) from None
        cache_key = f"{backbone.name}|{image_size}|{weights_identity(weights)}"
        _MODELS[key] = RUNTIMES[runtime](model, threads, cache_key)
    return _MODELS[key]


def padded_size(count: int, batch_size: int) -> int:
    """The batch shape a chunk of `count` (<= batch_size) images runs at.

    Each new input shape costs a retrace of the model, so shapes are few (powers of two,
    capped at batch_size); padding to the next power of two wastes less than padding every
    short chunk to a full batch.
    """
    return min(1 << max(count - 1, 0).bit_length(), batch_size)


def featurize_batch(predict, backbone: Backbone, images: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 images (N, S, S, 3) -> float32 features (N, feature_dim), `predict` from load_model."""
    inputs = backbone.preprocess(images.astype(np.float32))
    outputs = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        shape = padded_size(len(chunk), batch_size)
        if shape > len(chunk):
            chunk = np.concatenate([chunk, np.zeros((shape - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        outputs.append(predict(chunk)[: min(len(inputs) - start, batch_size)])
    return np.concatenate(outputs).astype(np.float32, copy=False)


def featurize_record_batch(batch: pa.RecordBatch, model, backbone: Backbone, config: JobConfig) -> pa.RecordBatch:
    """One Arrow batch of (path, content, label, split) -> featurized rows, bad files as error rows.

    Arrow in, Arrow out: path/label/split pass through without copies and the features
    leave as one flat float32 buffer, with no per-row Python objects on the way.
    """
    rows, dim = batch.num_rows, backbone.feature_dim
    arrays, good_rows, errors = [], [], [None] * rows
    for i, data in enumerate(batch.column("content").to_pylist()):
        try:
            arrays.append(decode_image(data, config.image_size))
            good_rows.append(i)
        except BadImage as exc:
            errors[i] = str(exc)
    vectors = np.zeros((rows, dim), dtype=np.float32)
    if arrays:
        vectors[good_rows] = featurize_batch(model, backbone, np.stack(arrays), config.batch_size)
    missing = np.ones(rows, dtype=bool)
    missing[good_rows] = False
    offsets = pa.array(np.arange(0, (rows + 1) * dim, dim, dtype=np.int32))
    features = pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel()), mask=pa.array(missing))
    columns = [batch.column("path"), batch.column("label"), batch.column("split"), features,
               pa.array(errors, type=pa.string())]
    return pa.RecordBatch.from_arrays(columns, names=["path", "label", "split", "features", "error"])


def featurize(images: DataFrame, config: JobConfig) -> DataFrame:
    """Spark stage: labelled (path, content) rows -> FEATURIZED_SCHEMA rows."""
    backbone = BACKBONES[config.model]

    def featurize_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        threads = context.cpus() if context else 1
        model = None
        for batch in batches:
            if model is None:
                model = load_model(backbone, config.image_size, config.weights, threads, config.runtime)
            yield featurize_record_batch(batch, model, backbone, config)

    return images.select("path", "content", "label", "split").mapInArrow(featurize_partition, FEATURIZED_SCHEMA)
