"""Fit: the classifier head, a multinomial logistic regression on the run's `pca` vectors,
fitted in Spark ML on the executors (the rows are read back from the run's features Parquet,
never collected to the driver).

Its regularisation is chosen on held-out rows (`held_out`: frames kept apart), not guessed:
each regParam of REG_PARAMS is fitted on the train part for SELECT_ITER iterations and scored
top-1 on the held-out part; the best is fitted again on the train part to MAX_ITER, and that
model is saved, not one refitted on all rows: its held-out top-1 is the figure of the very
model that is saved (and exported). Each L-BFGS iteration is one pass of Spark over the rows
(~0.7 s at 29k rows x 481 components x 81 labels on 2 cores), so the short selection fits keep
the head's cost near the featurize stage's; on the 41,322-image training split they pick the
regParam that the full fits pick (1e-3). regParam 0 is left out: unregularised, it scored
0.882 there against 0.959, and converges slowest.
"""

from dataclasses import dataclass
from typing import Any

from fruits.fit.held_out import HELD_OUT, held_out
from fruits.fit.reduce import PCA_VECTOR
from fruits.io.storage import hadoop_literal

REG_PARAMS = (1e-4, 1e-3, 1e-2)  # elasticNetParam 0: L2 only
LABEL_INDEX = "label_index"  # the labels indexed in sorted order: index i is labels[i]
PREDICTION = "prediction"  # the head's output column (an index into labels)
SELECT_ITER = 30  # the selection fits
MAX_ITER = 100  # the chosen one's


@dataclass(frozen=True)
class Head:
    """A fitted head and how it was chosen."""

    model: Any  # pyspark.ml.classification.LogisticRegressionModel
    labels: list[str]
    reg_param: float
    grid: dict[str, float]  # each regParam (as text) -> its held-out top-1
    held_out_top1: float
    split: str  # how the held-out rows were chosen
    train_rows: int
    test_rows: int


def labelled_vectors(spark: Any, features_uri: str) -> tuple[Any, list[str]]:
    """The run's feature rows as (path, label, split, PCA_VECTOR, label index), and the labels
    in sorted order."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    vectors = array_to_vector(F.col("pca")).alias(PCA_VECTOR)  # the column the saved PCA stage outputs
    frame = spark.read.parquet(hadoop_literal(features_uri)).select("path", "label", "split", vectors)
    indexer = StringIndexer(inputCol="label", outputCol=LABEL_INDEX, stringOrderType="alphabetAsc").fit(frame)
    return indexer.transform(frame), list(indexer.labels)


def top1(model: Any, rows: Any) -> float:
    """The share of `rows` whose predicted index is their label's (computed on the executors)."""
    from pyspark.sql import functions as F

    hit = (F.col(PREDICTION) == F.col(LABEL_INDEX)).cast("double")
    return float(model.transform(rows).agg(F.avg(hit)).first()[0])


def fit_logistic(rows: Any, reg_param: float, iterations: int = MAX_ITER) -> Any:
    from pyspark.ml.classification import LogisticRegression

    return LogisticRegression(
        featuresCol=PCA_VECTOR,
        labelCol=LABEL_INDEX,
        predictionCol=PREDICTION,
        family="multinomial",
        regParam=reg_param,
        elasticNetParam=0.0,
        maxIter=iterations,
        # the pca components as they are: standardizing them would give the small, noisy trailing
        # components the leading ones' weight (measured on the sample's held-out frames: top-1
        # 0.87-0.89 standardized, 0.98 not, regParam 1e-3 or 1e-2)
        standardization=False,
    ).fit(rows)


def fit_head(spark: Any, features_uri: str, seed: int = 0) -> Head | None:
    """The head chosen on held-out rows (see the module's docstring); None when the rows
    cannot be split into a train and a held-out part, or hold fewer than two labels."""
    from pyspark.sql import functions as F

    frame, labels = labelled_vectors(spark, features_uri)
    split, how = held_out(frame, seed)
    # every fit passes over the rows many times: cached, in one partition per core (the split's
    # window functions leave spark.sql.shuffle.partitions of them, 200 by default: 200 tasks
    # per L-BFGS iteration made the head take 160 s on 120 images)
    cores = max(1, spark.sparkContext.defaultParallelism)
    rows = split.select(PCA_VECTOR, LABEL_INDEX, HELD_OUT).coalesce(cores).cache()
    try:
        train, test = rows.filter(~F.col(HELD_OUT)), rows.filter(F.col(HELD_OUT))
        train_rows, test_rows = train.count(), test.count()
        if len(labels) < 2 or not train_rows or not test_rows:
            return None
        grid = {reg: top1(fit_logistic(train, reg, SELECT_ITER), test) for reg in REG_PARAMS}
        best = max(REG_PARAMS, key=lambda reg: (grid[reg], reg))  # a tie goes to the stronger regularisation
        model = fit_logistic(train, best)
        return Head(
            model,
            labels,
            best,
            {repr(reg): round(score, 4) for reg, score in grid.items()},
            round(top1(model, test), 4),
            how,
            train_rows,
            test_rows,
        )
    finally:
        rows.unpersist()
