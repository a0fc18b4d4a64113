"""What the featurize pass learns on the way: counts per label and split, and the moments
of the features for the PCA fit.

Each featurize task sends one RunTally through a Spark accumulator when it has featurized
its partition, so the driver has the counts and the PCA statistics as soon as the pass
ends, without a second pass over the features. Tallies are keyed by partition: a partition
featurized twice (a retried or speculative task, an evicted cache block recomputed) is
counted once, whichever attempt reports first (they hold the same images).
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from pyspark.accumulators import AccumulatorParam

from fruits.moments import Moments, MomentsBuilder


@dataclass
class RunTally:
    partitions: frozenset = frozenset()
    rows: int = 0  # rows featurized: usable images plus failed ones
    failed: int = 0
    labels: Counter = field(default_factory=Counter)  # usable images per label
    splits: Counter = field(default_factory=Counter)  # usable images per split
    moments: Moments = field(default_factory=Moments.empty)  # of the rows sampled for the fit

    @property
    def ok(self) -> int:
        return self.rows - self.failed

    def merge(self, other: "RunTally") -> "RunTally":
        if other.partitions & self.partitions or not other.partitions:
            return self  # a repeated partition, or nothing
        return RunTally(self.partitions | other.partitions, self.rows + other.rows, self.failed + other.failed,
                        self.labels + other.labels, self.splits + other.splits, self.moments.merge(other.moments))


class RunTallyParam(AccumulatorParam):
    def zero(self, value: RunTally) -> RunTally:
        return RunTally()

    def addInPlace(self, value1: RunTally, value2: RunTally) -> RunTally:
        return value1.merge(value2)


class PartitionTally:
    """A task's tally, fed batch by batch; rows enter the moments with probability
    `fit_fraction` (seeded per partition, so a repeated task samples the same rows)."""

    def __init__(self, partition: int, fit_fraction: float = 1.0, seed: int = 0):
        self.partition = partition
        self.fit_fraction = fit_fraction
        self._random = np.random.default_rng([seed, partition]) if fit_fraction < 1.0 else None
        self._moments = MomentsBuilder()
        self.rows = self.failed = 0
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

    def result(self) -> RunTally:
        return RunTally(frozenset([self.partition]), self.rows, self.failed, self.labels, self.splits,
                        self._moments.result())
