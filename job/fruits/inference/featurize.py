"""Featurize: decode, resize and run the CNN backbone, batched, inside Spark tasks.

The driver prepares the model once per run (`prepare_model`: the converted TFLite file, or
the downloaded ImageNet weights for `--runtime tf`) and ships it with the tasks as a Spark
broadcast, which an executor fetches once and a worker reads only if its machine has no
copy: weights are downloaded and models converted on the driver, never per executor.

The model cache is a module global of this importable module on purpose: Spark pickles a
closure (or anything in __main__) with every task, which would rebuild the model per
task; a module global lives as long as the reused Python worker (GUIDE.md).
"""

import os
import tempfile
import threading
from dataclasses import dataclass
from functools import partial
from typing import Iterator

import numpy as np
import pyarrow as pa

from fruits.settings.backbones import BACKBONES, Backbone, baked_imagenet
from fruits.settings.config import JobConfig
from fruits.inference.decode import BadImage, decode_image
from fruits.settings.errors import UserError, worker_user_error
from fruits.io.output import ERRORS, LISTED_SCHEMA, STAGED, STAGED_SCHEMA, part_file
from fruits.inference.progress_counter import ImageCounterAddress, ImageReporter
from fruits.io.storage import Store
from fruits.inference.runtimes import (KerasRuntime, TFLiteRuntime, cached_by_content, converted_model, converted_name,
                                       stored_model)
from fruits.fit.tally import PartitionTally, stats_file
from fruits.io.vectors import to_arrow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def prepare_model(config: JobConfig) -> bytes | None:
    """On the driver, before any task: what the workers need to load the model without
    TensorFlow's converter or the internet. For `tflite`, the converted model (baked, cached,
    or converted here once); for `tf` with ImageNet weights that the image has not baked, the
    weights file (downloaded here once). None when the workers need nothing shipped."""
    backbone = BACKBONES[config.model]
    build = partial(_build, backbone, config.image_size, config.weights, UserError)
    if config.runtime == "tflite":
        return converted_model(converted_name(backbone.name, config.image_size, config.weights), build)
    if config.weights == "imagenet" and baked_imagenet(backbone.name, config.image_size) is None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "imagenet.weights.h5")
            build().save_weights(path)
            with open(path, "rb") as handle:
                return handle.read()
    return None


def _model_settings(config: JobConfig) -> tuple:
    return config.model, config.weights, config.image_size, config.runtime


class ModelInBackground:
    """prepare_model(config) on a thread of its own, started before Spark: TensorFlow's import
    and a conversion (~20 s of one core when nothing is baked or cached) then overlap the JVM's
    start and the listing instead of following them. A daemon thread: a run that fails before
    featurizing exits without waiting for it."""

    def __init__(self, config: JobConfig):
        self._settings = _model_settings(config)
        self._result: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._prepare, args=(config,), name="prepare-model", daemon=True)
        self._thread.start()

    def _prepare(self, config: JobConfig) -> None:
        try:
            self._result = prepare_model(config)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of result()
            self._error = exc

    def prepares_for(self, config: JobConfig) -> bool:
        return self._settings == _model_settings(config)

    def result(self) -> bytes | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def load_model(backbone: Backbone, image_size: int, weights: str, threads: int = 1, runtime: str = "tflite",
               shipped=None):
    """The backbone's predict function for these settings, built at most once per Python process.

    `shipped` is the driver's `prepare_model` result as a Spark broadcast (or None): read only
    when this machine has no copy, so a worker of a baked image never unpickles it.
    """
    key = (backbone.name, image_size, weights, runtime)
    if key not in _MODELS:
        build = partial(_build, backbone, image_size, weights)
        if runtime == "tflite":  # LiteRT: TensorFlow is imported only to convert (no shipped model)
            name = converted_name(backbone.name, image_size, weights)
            converted = stored_model(name) or (shipped.value if shipped is not None else None)
            _MODELS[key] = TFLiteRuntime(converted or converted_model(name, build), threads)
        else:
            _match_tf_threads(threads)
            if shipped is not None:
                build = partial(_build, backbone, image_size, _shipped_weights(shipped.value))
            _MODELS[key] = KerasRuntime(build(), threads)
    return _MODELS[key]


def _shipped_weights(data: bytes) -> str:
    """The driver's weights file, written once to this user's private cache; its path."""
    path = cached_by_content(data, ".weights.h5")
    if path is None:
        raise worker_user_error("No private cache folder for the model's weights; check that TMPDIR is writable.")
    return str(path)


def _build(backbone: Backbone, image_size: int, weights: str, error=worker_user_error):
    """Keras model of the backbone; a settings problem becomes `error(sentence)` (a worker's
    user error in tasks, a plain UserError on the driver)."""
    try:
        return backbone.build(image_size, weights)
    except Exception as exc:  # noqa: BLE001 - every cause here is a settings problem
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights == "imagenet":
            raise error(
                f"Could not get the ImageNet weights for {backbone.name} ({reason}); without internet "
                "access pass --weights PATH to a Keras weights file."
            ) from None
        raise error(
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
    features: pa.Table  # path, label, split, features: the images that decoded
    errors: pa.Table  # path, label, split, error: the files that could not be read or decoded
    vectors: np.ndarray  # the features column as a (rows, dim) matrix


def featurize_files(rows: list[tuple], contents: list, model, backbone: Backbone, config: JobConfig) -> FeaturizedBatch:
    """Listed rows (path, label, split, size, modified) and their contents (bytes, or the
    OSError of reading them) -> feature rows and error rows."""
    images = np.empty((len(rows), config.image_size, config.image_size, 3), dtype=np.uint8)
    ok, reasons = np.zeros(len(rows), dtype=bool), []
    for i, data in enumerate(contents):
        try:
            if isinstance(data, OSError):
                raise BadImage(f"cannot read: {data.strerror or data}")
            images[i] = decode_image(data, config.image_size)
            ok[i] = True
        except BadImage as exc:
            reasons.append(str(exc))
    vectors = featurize_batch(model, backbone, images[ok], config.batch_size) if ok.any() \
        else np.zeros((0, backbone.feature_dim), dtype=np.float32)
    listed = pa.table([pa.array(column, type=field.type) for column, field in zip(zip(*rows), LISTED_SCHEMA)],
                      schema=LISTED_SCHEMA)  # by column, as before: no per-row dicts in the hot path
    good, bad = listed.filter(pa.array(ok)), listed.select(["path", "label", "split"]).filter(pa.array(~ok))
    return FeaturizedBatch(good.append_column("features", to_arrow(vectors)),
                           bad.append_column("error", pa.array(reasons, type=pa.string())), vectors)


def plan_tasks(listing: pa.Table, partitions: int) -> dict[int, list[tuple]]:
    """The listing cut into `partitions` contiguous runs of (path, label, split, size,
    modified) rows, equal in count to one image, by partition number: the same listing always
    gives the same tasks."""
    columns = [listing.column(name) for name in LISTED_SCHEMA.names]
    columns[-1] = columns[-1].cast(pa.int64())  # µs as int: cheaper than datetime objects, and exact
    rows = list(zip(*(column.to_pylist() for column in columns)))
    partitions = max(1, min(partitions, len(rows)))
    bounds = [len(rows) * i // partitions for i in range(partitions + 1)]
    return {i: rows[bounds[i]:bounds[i + 1]] for i in range(partitions)}


def featurize(spark, tasks: dict[int, list[tuple]], config: JobConfig, source: Store, store: Store,
              progress: ImageCounterAddress | None = None, model_file: bytes | None = None) -> None:
    """Spark stage: each task reads its partition's images from `source`, and writes to `store`
    (the run's output) under STAGED: its features (part-NNNNN.parquet, STAGED_SCHEMA), then
    its tally (stats-NNNNN.npz: counts, feature moments, time spent) last; and its error rows
    (ERRORS/part-NNNNN.parquet) where some files could not be read or decoded. `tasks` maps
    partition numbers to their listed rows (plan_tasks); `model_file` is prepare_model's.
    """
    backbone = BACKBONES[config.model]
    shipped = spark.sparkContext.broadcast(model_file) if tasks and model_file is not None else None

    def featurize_partition(partition: int, rows: list[tuple]) -> None:
        from pyspark import TaskContext

        context = TaskContext.get()
        threads = context.cpus() if context else 1
        counts = PartitionTally(partition, config.fit_fraction, config.seed, cores=threads)
        model, errors = None, []
        report = ImageReporter(progress)
        with store.writer(f"{STAGED}/{part_file(partition)}", STAGED_SCHEMA) as features:
            contents = source.read_many([row[0] for row in rows])
            for start in range(0, len(rows), config.batch_size):
                chunk = rows[start:start + config.batch_size]
                if model is None:
                    model = load_model(backbone, config.image_size, config.weights, threads, config.runtime, shipped)
                featurized = featurize_files(chunk, [next(contents) for _ in chunk], model, backbone, config)
                counts.add(featurized.features.column("label").to_pylist(),
                           featurized.features.column("split").to_pylist(), featurized.vectors,
                           featurized.errors.num_rows)
                features.write_table(featurized.features)
                if featurized.errors.num_rows:
                    errors.append(featurized.errors)
                report.images(len(chunk))
        if errors:
            store.write(f"{ERRORS}/{part_file(partition)}", pa.concat_tables(errors))
        store.write_bytes(f"{STAGED}/{stats_file(partition)}", counts.result().to_bytes())  # last: done

    def featurize_partitions(indexed: Iterator[tuple[int, list[tuple]]]) -> Iterator[int]:
        for partition, rows in indexed:
            featurize_partition(partition, rows)
            yield partition

    if tasks:
        try:
            spark.sparkContext.parallelize(sorted(tasks.items()), len(tasks)).mapPartitions(
                featurize_partitions).collect()
        finally:
            if shipped is not None:
                shipped.destroy()
