"""What the featurize pass learns on the way: counts per label and split, the moments of the
features for the PCA fit, and the task time actually spent.

Each featurize task writes its partition's tally beside its staged features
(`_staging/stats-NNNNN.npz`, committed after them: its presence says the partition is done).
A small Spark stage then merges the files on the executors, a group per executor, so the
driver receives one tally per executor whatever the number of tasks or images (a d x d
float64 scatter matrix is 12.5 MiB for d = 1280: one per task through an accumulator grew
with the task count and hit spark.driver.maxResultSize). Tallies are keyed by partition: a
partition merged twice counts once.
"""

import io
import json
import pickle
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from fruits.fit.moments import Moments, MomentsBuilder


@lru_cache(maxsize=4)
def _upper_mask(d: int) -> np.ndarray:
    """The upper triangle (diagonal included) of a d x d matrix as a boolean mask: indexing
    with it reads row by row, as np.triu_indices does, in 1/16 of the indices' memory. Made
    once per d (every tally of a run has the same d) and read-only."""
    mask = np.triu(np.ones((d, d), dtype=bool))
    mask.flags.writeable = False
    return mask


def stats_file(partition: int) -> str:
    return f"stats-{partition:05d}.npz"


@dataclass
class RunTally:
    partitions: frozenset = frozenset()
    rows: int = 0  # rows featurized: usable images plus failed ones
    failed: int = 0
    labels: Counter = field(default_factory=Counter)  # usable images per label
    splits: Counter = field(default_factory=Counter)  # usable images per split
    moments: Moments = field(default_factory=Moments.empty)  # of the rows sampled for the fit
    core_seconds: float = 0.0  # task time x the task's cores, as spent
    read_retries: int = 0  # reads retried after a transient storage fault
    retried: int = 0  # task attempts lost and run again (their time is not in core_seconds)

    @property
    def ok(self) -> int:
        return self.rows - self.failed

    def merge(self, other: "RunTally") -> "RunTally":
        if other.partitions & self.partitions or not other.partitions:
            return self  # a repeated partition, or nothing
        return RunTally(
            self.partitions | other.partitions,
            self.rows + other.rows,
            self.failed + other.failed,
            self.labels + other.labels,
            self.splits + other.splits,
            self.moments.merge(other.moments),
            self.core_seconds + other.core_seconds,
            self.read_retries + other.read_retries,
            self.retried + other.retried,
        )

    def without(self, part: "RunTally", partition: int) -> "RunTally":
        """The usable rows of this tally less those of `part` (rows among them), as one
        partition: what an incremental run carries over from the previous run's tally."""
        return RunTally(
            frozenset([partition]),
            self.ok - part.ok,
            0,
            self.labels - part.labels,
            self.splits - part.splits,
            self.moments.without(part.moments),
            0.0,
        )

    def to_bytes(self) -> bytes:
        counts = {
            "partitions": sorted(self.partitions),
            "rows": self.rows,
            "failed": self.failed,
            "labels": self.labels,
            "splits": self.splits,
            "core_seconds": self.core_seconds,
            "read_retries": self.read_retries,
            "retried": self.retried,
        }
        buffer = io.BytesIO()
        upper = _upper_mask(len(self.moments.mean))  # the scatter matrix is symmetric: half of it
        np.savez(
            buffer,
            counts=np.frombuffer(json.dumps(counts).encode(), dtype=np.uint8),
            n=np.array(self.moments.n),
            mean=self.moments.mean,
            scatter=self.moments.scatter[upper],
        )
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> "RunTally":
        with np.load(io.BytesIO(data)) as arrays:
            counts, n = json.loads(arrays["counts"].tobytes()), int(arrays["n"])
            mean, upper = arrays["mean"], arrays["scatter"]
        scatter = np.zeros((len(mean), len(mean)))
        mask = _upper_mask(len(mean))
        scatter[mask] = upper
        scatter.T[mask] = upper  # the lower half, through the transposed view: no d x d temporary
        moments = Moments(n, mean, scatter)
        return RunTally(
            frozenset(counts["partitions"]),
            counts["rows"],
            counts["failed"],
            Counter(counts["labels"]),
            Counter(counts["splits"]),
            moments,
            counts["core_seconds"],
            counts.get("read_retries", 0),  # absent from the tallies of older runs
            counts.get("retried", 0),
        )


class PartitionTally:
    """A task's tally, fed batch by batch; rows enter the moments with probability
    `fit_fraction` (seeded per partition, so a repeated task samples the same rows).
    `attempt`: Spark's attempt number of the task (0 the first time; n after n attempts lost)."""

    def __init__(self, partition: int, fit_fraction: float = 1.0, seed: int = 0, cores: int = 1, attempt: int = 0):
        self.partition, self.attempt = partition, attempt
        self.fit_fraction = fit_fraction
        self._random = np.random.default_rng([seed, partition]) if fit_fraction < 1.0 else None
        self._moments = MomentsBuilder()
        self._started, self._cores = time.perf_counter(), cores
        self.rows = self.failed = self.read_retries = 0
        self._lock = threading.Lock()
        self.labels: Counter = Counter()
        self.splits: Counter = Counter()

    @property
    def ok(self) -> int:
        return self.rows - self.failed

    def add(self, labels: list, splits: list, vectors: np.ndarray, failed: int) -> None:
        """One batch: the labels, splits and feature vectors of its usable images, and how
        many of its files failed."""
        self.rows += len(labels) + failed
        self.failed += failed
        self.labels.update(labels)
        self.splits.update(split for split in splits if split is not None)
        if self._random is not None:
            vectors = vectors[self._random.random(len(vectors)) < self.fit_fraction]
        self._moments.add(vectors)

    def retried(self) -> None:
        """A read of this partition retried (Store.read_many's on_retry); on the reader's threads."""
        with self._lock:
            self.read_retries += 1

    def result(self) -> RunTally:
        return RunTally(
            frozenset([self.partition]),
            self.rows,
            self.failed,
            self.labels,
            self.splits,
            self._moments.result(),
            (time.perf_counter() - self._started) * self._cores,
            self.read_retries,
            self.attempt,
        )


@dataclass(frozen=True)
class MergeTallies:
    """The merge task: the tallies of the partitions it is given (stats files under
    store/folder) merged into one, pickled for the driver."""

    store: Any
    folder: str

    def __call__(self, chosen: Iterator[int]) -> Iterator[bytes]:
        total = RunTally()
        for partition in chosen:
            total = total.merge(RunTally.from_bytes(self.store.read_bytes(f"{self.folder}/{stats_file(partition)}")))
        yield pickle.dumps(total, protocol=pickle.HIGHEST_PROTOCOL)


def merge_stats(spark: Any, store: Any, folder: str, partitions: list[int], groups: int) -> tuple[RunTally, int]:
    """The merged tally of `partitions` (their stats files under store/folder), merged in
    `groups` Spark tasks (MergeTallies); returns it with the bytes the driver received for it."""
    groups = max(1, min(groups, len(partitions)))
    total, received = RunTally(), 0
    for result in (
        spark.sparkContext.parallelize(partitions, groups).mapPartitions(MergeTallies(store, folder)).collect()
    ):
        received += len(result)
        total = total.merge(pickle.loads(result))
    return total, received
