"""Reduce: standardize the CNN features, then PCA with k chosen by explained variance.

PCA is fitted once with k = feature_dim (Spark builds the d x d covariance either way)
and a VectorSlicer keeps the first k components: one pass over the data gives both the
whole explained-variance curve and the model, and the saved PipelineModel transforms new
images without refitting.
"""

from dataclasses import dataclass

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, StandardScaler, VectorSlicer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame


FEATURES_VECTOR = "features_vector"
PCA_VECTOR = "pca_vector"


@dataclass(frozen=True)
class Reduction:
    model: PipelineModel
    k: int
    explained_variance: list[float]  # per component, all of them, descending

    @property
    def variance_kept(self) -> float:
        return float(sum(self.explained_variance[: self.k]))


def choose_k(explained_variance, target: float) -> int:
    """The smallest k whose cumulative explained variance reaches `target`."""
    cumulative = np.cumsum(np.asarray(explained_variance, dtype=np.float64))
    reached = np.nonzero(cumulative >= target - 1e-9)[0]
    return int(reached[0]) + 1 if len(reached) else len(cumulative)


def fit_reduction(features: DataFrame, feature_dim: int, *, k: int | None, variance: float,
                  fit_fraction: float = 1.0, seed: int = 42) -> Reduction:
    """Fit scaler + PCA on `features` (a `features` array column), or on a sample of it."""
    sample = features if fit_fraction >= 1.0 else features.sample(fraction=fit_fraction, seed=seed)
    vectors = sample.select(array_to_vector("features").alias(FEATURES_VECTOR))
    fitted = Pipeline(
        stages=[
            StandardScaler(inputCol=FEATURES_VECTOR, outputCol="scaled", withMean=True, withStd=True),
            PCA(k=feature_dim, inputCol="scaled", outputCol="pca_all"),
        ]
    ).fit(vectors)
    scaler, pca = fitted.stages
    curve = [float(v) for v in pca.explainedVariance.toArray()]
    chosen = min(k, feature_dim) if k is not None else choose_k(curve, variance)
    slicer = VectorSlicer(inputCol="pca_all", outputCol=PCA_VECTOR, indices=list(range(chosen)))
    return Reduction(PipelineModel(stages=[scaler, pca, slicer]), chosen, curve)


def apply_reduction(model: PipelineModel, features: DataFrame) -> DataFrame:
    """Add a `pca` float array column to rows with a `features` array column."""
    transformed = model.transform(features.withColumn(FEATURES_VECTOR, array_to_vector("features")))
    return transformed.withColumn("pca", vector_to_array(PCA_VECTOR, dtype="float32")).select(
        *features.columns, "pca"
    )


def load_reduction_model(path: str) -> PipelineModel:
    """The scaler + PCA model a run saved under OUTPUT/model, to transform new features."""
    return PipelineModel.load(path)


