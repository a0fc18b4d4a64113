"""Featurize: decode, resize and run the CNN backbone, batched, inside Spark tasks.

The model cache is a module global of this importable module on purpose: Spark pickles a
closure (or anything in __main__) with every task, which would rebuild the model per
task; a module global lives as long as the reused Python worker (GUIDE.md).
"""

import os
from dataclasses import dataclass
from functools import partial
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.accumulators import Accumulator
from pyspark.sql import DataFrame

from fruits.backbones import BACKBONES, Backbone
from fruits.config import JobConfig
from fruits.decode import BadImage, decode_image
from fruits.errors import worker_user_error
from fruits.output import ERRORS, STAGED, STAGED_SCHEMA, part_file
from fruits.parquet_store import ParquetStore
from fruits.runtimes import KerasRuntime, TFLiteRuntime, converted_model, converted_name
from fruits.tally import PartitionTally
from fruits.vectors import to_arrow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_DONE_SCHEMA = pa.schema([("partition", pa.int32()), ("rows", pa.int64())])  # a task's one output row

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
        build = partial(_build, backbone, image_size, weights)
        if runtime == "tflite":  # a converted model on disk spares building the Keras one
            converted = converted_model(converted_name(backbone.name, image_size, weights), build)
            _MODELS[key] = TFLiteRuntime(converted, threads)
        else:
            _MODELS[key] = KerasRuntime(build(), threads)
    return _MODELS[key]


def _build(backbone: Backbone, image_size: int, weights: str):
    try:
        return backbone.build(image_size, weights)
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


def padded_size(count: int, batch_size: int) -> int:
    """The batch shape a chunk of `count` (<= batch_size) images runs at.

    Each new input shape costs a retrace of the model, so shapes are few (powers of two,
    capped at batch_size); padding to the next power of two wastes less than padding every
    short chunk to a full batch.
    """
    return min(1 << max(count - 1, 0).bit_length(), batch_size)


_INPUTS: dict[tuple, np.ndarray] = {}


def _input_buffer(shape: tuple) -> np.ndarray:
    """A float32 model input of this shape, reused: a fresh 12 MB array per batch costs
    more in page faults than the preprocessing itself."""
    if shape not in _INPUTS:
        _INPUTS[shape] = np.zeros(shape, dtype=np.float32)
    return _INPUTS[shape]


def featurize_batch(predict, backbone: Backbone, images: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 images (N, S, S, 3) -> float32 features (N, feature_dim), `predict` from load_model."""
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        inputs = _input_buffer((padded_size(len(chunk), batch_size), *chunk.shape[1:]))
        backbone.preprocess(chunk, out=inputs[: len(chunk)])
        inputs[len(chunk):] = 0  # padding rows: their outputs are dropped
        outputs.append(predict(inputs)[: len(chunk)])
    return np.concatenate(outputs).astype(np.float32, copy=False)


@dataclass
class FeaturizedBatch:
    features: pa.RecordBatch  # path, label, split, features: the images that decoded
    errors: pa.RecordBatch  # path, label, split, error: the files that did not
    vectors: np.ndarray  # the features column as a (rows, dim) matrix


def featurize_record_batch(batch: pa.RecordBatch, model, backbone: Backbone, config: JobConfig) -> FeaturizedBatch:
    """One Arrow batch of (path, content, label, split) -> feature rows and error rows.

    Arrow in, Arrow out: path/label/split pass through without copies and the features
    leave as one flat float32 buffer, with no per-row Python objects on the way.
    """
    rows = batch.num_rows
    images = np.empty((rows, config.image_size, config.image_size, 3), dtype=np.uint8)
    ok, errors = np.zeros(rows, dtype=bool), []
    for i, data in enumerate(batch.column("content").to_pylist()):
        try:
            images[i] = decode_image(data, config.image_size)
            ok[i] = True
        except BadImage as exc:
            errors.append(str(exc))
    vectors = featurize_batch(model, backbone, images[ok], config.batch_size) if ok.any() \
        else np.zeros((0, backbone.feature_dim), dtype=np.float32)
    described = batch.select(["path", "label", "split"])
    good, bad = described.filter(pa.array(ok)), described.filter(pa.array(~ok))
    return FeaturizedBatch(good.append_column("features", to_arrow(vectors)),
                           bad.append_column("error", pa.array(errors, type=pa.string())), vectors)


def featurize(images: DataFrame, config: JobConfig, store: ParquetStore, tally: Accumulator) -> list[int]:
    """Spark stage: labelled (path, content) rows -> in `store` (the run's output), one staged
    Parquet file of features per partition (STAGED_SCHEMA), and one of error rows
    (ERROR_SCHEMA) for each partition where some files did not decode.

    Each task adds its partition's counts and feature moments to `tally` (a RunTally
    accumulator). Returns the partitions that staged a file.
    """
    backbone = BACKBONES[config.model]

    def featurize_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        threads = context.cpus() if context else 1
        partition = context.partitionId() if context else 0
        counts = PartitionTally(partition, config.fit_fraction, config.seed)
        model, errors = None, []
        with store.writer(f"{STAGED}/{part_file(partition)}", STAGED_SCHEMA) as features:
            for batch in batches:
                if model is None:
                    model = load_model(backbone, config.image_size, config.weights, threads, config.runtime)
                featurized = featurize_record_batch(batch, model, backbone, config)
                counts.add(featurized.features.column("label").to_pylist(),
                           featurized.features.column("split").to_pylist(), featurized.vectors,
                           featurized.errors.num_rows)
                features.write_batch(featurized.features)
                if featurized.errors.num_rows:
                    errors.append(featurized.errors)
        if errors:
            store.write(f"{ERRORS}/{part_file(partition)}", pa.Table.from_batches(errors))
        tally.add(counts.result())
        yield pa.RecordBatch.from_pydict({"partition": [partition], "rows": [counts.ok]}, schema=_DONE_SCHEMA)

    done = images.select("path", "content", "label", "split").mapInArrow(
        featurize_partition, "partition int, rows long").collect()
    return sorted(row["partition"] for row in done if row["rows"])
