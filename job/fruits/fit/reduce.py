"""Reduce: standardize the CNN features, then PCA with k chosen by explained variance.

The statistics (mean and centred scatter matrix) come with the featurize pass itself
(fruits.fit.tally), and the d x d eigendecomposition runs on the driver with LAPACK. Spark ML's
own PCA does the same maths in two more passes and decomposes with a JVM fallback BLAS
(11 s instead of 0.4 s for d = 1280 on two cores). The job applies the fit with NumPy
(fruits.write.projection); it is also saved as a standard Spark ML PipelineModel
(StandardScalerModel -> PCAModel), reloadable with PipelineModel.load.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fruits.fit.moments import Moments

# Spark ML (and through it pandas) is imported only where a user applies a saved model: this
# module's projection runs in Spark's Python workers, where that import would cost ~0.6 s and
# ~150 MB in each.
FEATURES_VECTOR = "features_vector"
PCA_VECTOR = "pca_vector"


@dataclass(frozen=True)
class Reduction:
    """The fitted scaler + PCA as NumPy arrays (fruits.write.model_files saves them in Spark ML's form)."""

    mean: np.ndarray  # (d,) the scaler's parameters and the PCA's
    std: np.ndarray  # (d,)
    components: np.ndarray  # (d, k)
    weights: np.ndarray  # (d, k): scaling and components in one matrix, so pca = x @ weights + bias
    bias: np.ndarray  # (k,)
    explained_variance: list[float]  # per component, all of them, descending
    fit_rows: int

    @property
    def k(self) -> int:
        return self.weights.shape[1]

    @property
    def variance_kept(self) -> float:
        return float(sum(self.explained_variance[: self.k]))


def choose_k(explained_variance: Sequence[float] | np.ndarray, target: float) -> int:
    """The smallest k whose cumulative explained variance reaches `target`."""
    cumulative = np.cumsum(np.asarray(explained_variance, dtype=np.float64))
    reached = np.nonzero(cumulative >= target - 1e-9)[0]
    return int(reached[0]) + 1 if len(reached) else len(cumulative)


def max_components(rows: int, feature_dim: int) -> int:
    """The most components `rows` centred vectors of `feature_dim` values can span."""
    return max(1, min(feature_dim, rows - 1))


def _inverse(std: np.ndarray) -> np.ndarray:
    """1 / std, and 0 where std is 0 (what Spark's StandardScaler does to constant features)."""
    return np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)


def standardized_pca(moments: Moments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(std, eigenvalues descending, eigenvectors as columns) of the standardized data.

    Constant features have std 0: Spark's StandardScaler maps them to 0, so they add
    nothing to the covariance.
    """
    covariance = moments.scatter / max(moments.n - 1, 1)
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    inverse = _inverse(std)
    values, vectors = np.linalg.eigh(covariance * np.outer(inverse, inverse))
    order = np.argsort(values)[::-1]
    return std, np.clip(values[order], 0.0, None), vectors[:, order]


def fit_reduction(moments: Moments, *, k: int | None, variance: float) -> Reduction:
    """Scaler + PCA from the moments of the features, k given or chosen by `variance`."""
    if moments.n < 2:
        raise ValueError("PCA needs the moments of at least 2 rows")
    std, eigenvalues, eigenvectors = standardized_pca(moments)
    total = eigenvalues.sum()
    explained = eigenvalues / total if total > 0 else np.zeros_like(eigenvalues)
    chosen = min(k, len(explained)) if k is not None else choose_k(explained, variance)
    return reduction_of(moments.mean, std, eigenvectors[:, :chosen], [float(v) for v in explained], moments.n)


def reduction_of(
    mean: np.ndarray, std: np.ndarray, components: np.ndarray, explained_variance: list[float], fit_rows: int
) -> Reduction:
    """StandardScaler then PCA, as one affine map: ((x - mean) / std) @ C = x @ W + b."""
    weights = _inverse(std)[:, None] * components
    return Reduction(mean, std, components, weights, -(mean @ weights), explained_variance, fit_rows)


def apply_reduction(model: Any, features: Any) -> Any:
    """Add a `pca` float array column with a saved Spark ML model (see load_reduction_model):
    how a user applies a run's reduction to new features (a Spark DataFrame) in Spark."""
    from pyspark.ml.functions import array_to_vector, vector_to_array

    # Both take a column name as well as a Column at run time; pyspark's hints say Column only.
    vectors = array_to_vector("features")  # type: ignore[arg-type]
    transformed = model.transform(features.withColumn(FEATURES_VECTOR, vectors))
    arrays = vector_to_array(PCA_VECTOR, dtype="float32")  # type: ignore[arg-type]
    return transformed.withColumn("pca", arrays).select(*features.columns, "pca")


def load_reduction_model(path: str) -> Any:
    """The scaler + PCA model (a Spark ML PipelineModel) a run saved under OUTPUT/model, to
    transform new features."""
    from pyspark.ml import PipelineModel

    return PipelineModel.load(path)
