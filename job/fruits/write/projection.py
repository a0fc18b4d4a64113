"""Write: the feature rows of a run, each with its `pca` vector, into the output's features/.

The fitted reduction is applied with NumPy on whole batches, one matrix product each (the
saved Spark ML model applies the same maths row by row on the JVM).
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from fruits.fit.reduce import Reduction
from fruits.io.output import FEATURES_SCHEMA, STAGED_SCHEMA, part_file
from fruits.io.storage import Store
from fruits.io.vectors import from_arrow, to_arrow


class RowSource(NamedTuple):
    """Feature rows in a Parquet file of a store: a featurize task's staged file (rows None:
    all of them), or a previous run's features file and the rows an incremental run keeps."""

    store: Store
    file: str
    rows: list[int] | None = None

    def batches(self, columns: list[str], rows_per_batch: int) -> Iterator:
        if self.rows is None:
            yield from self.store.batches(self.file, rows_per_batch, columns)
            return
        kept = self.store.read_table(self.file, columns=columns).take(self.rows).cast(STAGED_SCHEMA)
        yield from kept.to_batches(rows_per_batch)

    def row_count(self) -> int:
        return self.store.parquet_rows(self.file) if self.rows is None else len(self.rows)


class Projected(NamedTuple):
    """What one projection task wrote: its file (relative to the store), rows and SHA-256."""

    file: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class ProjectSources:
    """The task of the projection stage: each (partition, source) it is given -> the source's
    rows plus their `pca` column, in `folder`/part-NNNNN.parquet of `store` (no file for a
    source without rows); yields what it wrote per source."""

    weights: np.ndarray
    bias: np.ndarray
    store: Store
    folder: str
    rows_per_batch: int = 2048

    def __call__(self, chosen: Iterator[tuple[int, RowSource]]) -> Iterator[Projected]:
        for partition, source in chosen:
            yield self.project(partition, source)

    def project(self, partition: int, source: RowSource) -> Projected:
        file = f"{self.folder}/{part_file(partition)}"
        if source.row_count() == 0:
            return Projected(file, 0, "")
        written, digest = 0, hashlib.sha256()  # hashed as written: the manifest records it
        with self.store.writer(file, FEATURES_SCHEMA, digest) as writer:
            # a previous run's rows also hold its pca: only the staged columns are read, pca replaced
            for batch in source.batches(STAGED_SCHEMA.names, self.rows_per_batch):
                pca = from_arrow(batch.column("features")) @ self.weights + self.bias  # float64: no cancellation
                writer.write_batch(batch.append_column("pca", to_arrow(pca)))
                written += batch.num_rows
        return Projected(file, written, digest.hexdigest())


def project_rows(
    spark: Any, sources: dict[int, RowSource], reduction: Reduction, store: Store, folder: str
) -> list[Projected]:
    """Spark stage: one task per source (ProjectSources), numbered by partition."""
    task = ProjectSources(reduction.weights, reduction.bias, store, folder)
    work = sorted(sources.items())
    return [
        Projected(*done)
        for done in spark.sparkContext.parallelize(work, max(1, len(work))).mapPartitions(task).collect()
    ]
