"""Dense vectors as Arrow list<float> columns (Spark's array<float>), without per-row objects."""

import numpy as np
import pyarrow as pa


def to_arrow(matrix: np.ndarray, missing: np.ndarray | None = None) -> pa.ListArray:
    """(rows, dim) float32 matrix -> a list column of `rows` vectors; rows where `missing` is null."""
    rows, dim = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * dim, dim, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel())
    mask = None if missing is None or not missing.any() else pa.array(missing)
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def from_arrow(column: pa.Array) -> np.ndarray:
    """A list column of equal-length, non-null vectors -> (rows, dim) matrix (a view when possible)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), -1) if len(column) else values.reshape(0, 0)
