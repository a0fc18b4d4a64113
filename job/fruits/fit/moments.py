"""Mean and scatter matrix of feature vectors, built in blocks and merged exactly (pure NumPy).

This is all the PCA fit needs from the data: the driver turns the merged moments into the
standardized covariance and decomposes it (fruits.fit.reduce).
"""

from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 512  # rows per scatter update: big enough for an efficient SYRK, small enough that
# the last, unmerged block adds little to the end of a task


@dataclass(frozen=True)
class Moments:
    n: int
    mean: np.ndarray  # (d,)
    scatter: np.ndarray  # (d, d): sum of (x - mean)(x - mean)^T

    @staticmethod
    def empty() -> "Moments":
        return Moments(0, np.zeros(0), np.zeros((0, 0)))

    @staticmethod
    def of(rows: np.ndarray) -> "Moments":
        rows = np.asarray(rows, dtype=np.float64)
        mean = rows.mean(axis=0)
        centred = rows - mean
        return Moments(len(rows), mean, centred.T @ centred)  # NumPy runs A.T @ A as one SYRK

    def merge(self, other: "Moments") -> "Moments":
        """Chan et al.'s pairwise update: exact, and stable for large n."""
        if not self.n:
            return other
        if not other.n:
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        scatter = self.scatter + other.scatter
        scatter += np.outer(delta * (self.n * other.n / n), delta)  # one d x d temporary, not three
        return Moments(n, mean, scatter)

    def without(self, part: "Moments") -> "Moments":
        """The moments of these rows less `part` (rows among them): merge, solved for the other
        half. An incremental run takes the rows it dropped out of the previous run's moments
        instead of recomputing the moments of every row it kept."""
        if not part.n:
            return self
        n = self.n - part.n
        if n < 0:
            raise ValueError("cannot remove more rows than the moments hold")
        if n == 0:
            return Moments(0, np.zeros_like(self.mean), np.zeros_like(self.scatter))
        mean = (self.mean * self.n - part.mean * part.n) / n
        delta = part.mean - mean
        scatter = self.scatter - part.scatter
        scatter -= np.outer(delta * (n * part.n / self.n), delta)
        return Moments(n, mean, scatter)


class MomentsBuilder:
    """Moments of rows that arrive in small batches: rows are held until a block is full,
    because one update costs a d x d pass, too much to pay per 64-row Arrow batch."""

    def __init__(self) -> None:
        self.total = Moments.empty()
        self._held: list[np.ndarray] = []
        self._rows = 0

    def add(self, rows: np.ndarray) -> None:
        if len(rows):
            self._held.append(np.asarray(rows, dtype=np.float32))
            self._rows += len(rows)
        if self._rows >= BLOCK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self.total = self.total.merge(Moments.of(np.concatenate(self._held)))
            self._held, self._rows = [], 0

    def result(self) -> Moments:
        self._flush()
        return self.total
