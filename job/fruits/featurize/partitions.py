"""Featurize: one Spark partition's images read, decoded, resized and run through the
backbone in batches, with the fit's statistics tallied in the same pass (the images are read
once). `FeaturizePartitions` is the task; `featurize` schedules it.
"""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fruits.featurize.backbone_model import load_backbone
from fruits.featurize.decode import BadImage, decode_image
from fruits.featurize.progress_counter import ImageCounterAddress, ImageReporter
from fruits.fit.tally import PartitionTally, stats_file
from fruits.ingest.listing import ListedImage
from fruits.io.output import ERRORS, LISTED_SCHEMA, STAGED, STAGED_SCHEMA, part_file
from fruits.io.storage import Store
from fruits.io.vectors import to_arrow
from fruits.settings.backbones import BACKBONES, Backbone
from fruits.settings.config import JobConfig


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
    """uint8 images (N, S, S, 3) -> float32 features (N, feature_dim), `predict` from load_backbone."""
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        inputs = _input_buffer((padded_size(len(chunk), batch_size), *chunk.shape[1:]))
        backbone.preprocess(chunk, out=inputs[: len(chunk)])
        inputs[len(chunk) :] = 0  # padding rows: their outputs are dropped
        outputs.append(predict(inputs)[: len(chunk)])
    return np.concatenate(outputs).astype(np.float32, copy=False)


@dataclass
class FeaturizedBatch:
    features: pa.Table  # path, label, split, features: the images that decoded
    errors: pa.Table  # path, label, split, error: the files that could not be read or decoded
    vectors: np.ndarray  # the features column as a (rows, dim) matrix


def featurize_files(
    rows: list[ListedImage], contents: list, model, backbone: Backbone, config: JobConfig
) -> FeaturizedBatch:
    """Listed images and their contents (bytes, or the OSError of reading them) -> feature
    rows and error rows."""
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
    vectors = (
        featurize_batch(model, backbone, images[ok], config.batch_size)
        if ok.any()
        else np.zeros((0, backbone.feature_dim), dtype=np.float32)
    )
    listed = pa.table(
        [pa.array(column, type=field.type) for column, field in zip(zip(*rows), LISTED_SCHEMA)], schema=LISTED_SCHEMA
    )  # by column: no per-row dicts in the hot path
    good, bad = listed.filter(pa.array(ok)), listed.select(["path", "label", "split"]).filter(pa.array(~ok))
    return FeaturizedBatch(
        good.append_column("features", to_arrow(vectors)),
        bad.append_column("error", pa.array(reasons, type=pa.string())),
        vectors,
    )


@dataclass(frozen=True)
class FeaturizePartitions:
    """The featurize task: for each (partition, listed images) it is given, read the images
    from `source` and write to `store` (the run's output) in the run's `staging` folder its
    features (part-NNNNN.parquet, STAGED_SCHEMA) and, last, its tally (stats-NNNNN.npz: counts,
    feature moments, time spent), and its error rows (errors/part-NNNNN.parquet there) where
    some files could not be read or decoded. `shipped`: the prepared backbone as a Spark
    broadcast, or None."""

    config: JobConfig
    source: Store
    store: Store
    staging: str = STAGED
    progress: ImageCounterAddress | None = None
    shipped: object = None

    def __call__(self, indexed: Iterator[tuple[int, list[ListedImage]]]) -> Iterator[int]:
        from pyspark import TaskContext

        context = TaskContext.get()
        threads = context.cpus() if context else 1
        attempt = context.attemptNumber() if context else 0  # > 0: an earlier attempt was lost
        for partition, images in indexed:
            self.featurize_partition(partition, images, threads, attempt)
            yield partition

    def featurize_partition(
        self, partition: int, images: list[ListedImage], threads: int = 1, attempt: int = 0
    ) -> None:
        config, store = self.config, self.store
        backbone = BACKBONES[config.backbone]
        counts = PartitionTally(partition, config.fit_fraction, config.seed, cores=threads, attempt=attempt)
        predict, errors = None, []
        report = ImageReporter(self.progress)
        with store.writer(f"{self.staging}/{part_file(partition)}", STAGED_SCHEMA) as features:
            contents = self.source.read_many([image.path for image in images], on_retry=counts.retried)
            for start in range(0, len(images), config.batch_size):
                chunk = images[start : start + config.batch_size]
                if predict is None:
                    predict = load_backbone(
                        backbone,
                        config.image_size,
                        config.weights,
                        threads,
                        config.runtime,
                        self.shipped,
                        config.precision,
                    )
                featurized = featurize_files(chunk, [next(contents) for _ in chunk], predict, backbone, config)
                counts.add(
                    featurized.features.column("label").to_pylist(),
                    featurized.features.column("split").to_pylist(),
                    featurized.vectors,
                    featurized.errors.num_rows,
                )
                features.write_table(featurized.features)
                if featurized.errors.num_rows:
                    errors.append(featurized.errors)
                report.images(len(chunk))
        if errors:
            store.write(f"{self.staging}/{ERRORS}/{part_file(partition)}", pa.concat_tables(errors))
        store.write_bytes(f"{self.staging}/{stats_file(partition)}", counts.result().to_bytes())  # last: done


def featurize(
    spark, tasks: dict[int, list[ListedImage]], task: FeaturizePartitions, prepared: bytes | None = None
) -> None:
    """Spark stage: one task per partition of `tasks` (Listing.tasks), each running `task`;
    `prepared` is prepare_backbone's result, shipped to the executors as a broadcast."""
    if not tasks:
        return
    shipped = spark.sparkContext.broadcast(prepared) if prepared is not None else None
    task = dataclasses.replace(task, shipped=shipped)
    try:
        spark.sparkContext.parallelize(sorted(tasks.items()), len(tasks)).mapPartitions(task).collect()
    finally:
        if shipped is not None:
            shipped.destroy()
