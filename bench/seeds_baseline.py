"""The seeds' notebook pipeline, reproduced as the baseline the benchmark compares against.

Faithful to the original: 224x224 resize with PIL, MobileNetV2 without its top (the
notebook took the 1280-d pooling layer of the full model: the same tensor), weights
broadcast from the driver and a model rebuilt by `model_fn()` in every task of a
scalar-iterator pandas UDF, `model.predict` on each Arrow batch, repartition(20), the
features written to Parquet, then Spark ML StandardScaler + PCA on them.
Differences, for a fair comparison: the weights come from a file (no download), the
scaler centres the data (withMean=True), and k follows the same variance rule as ours.
"""

import io

import numpy as np
import pandas as pd
from PIL import Image
from pyspark.ml.feature import PCA, StandardScaler, VectorSlicer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import functions as F
from pyspark.sql.functions import PandasUDFType, pandas_udf

SIZE = 224


def run_seeds(spark, input_path: str, output: str, weights: str, variance: float = 0.95) -> dict:
    from tensorflow.keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input
    from tensorflow.keras.preprocessing.image import img_to_array

    from fruits.fit.reduce import choose_k

    sc = spark.sparkContext
    images = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", "*.jpg")
        .option("recursiveFileLookup", "true")
        .load(input_path)
    )
    images = images.withColumn("label", F.element_at(F.split(images["path"], "/"), -2))

    model = MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3))
    model.load_weights(weights)
    broadcast_weights = sc.broadcast(model.get_weights())

    def model_fn():
        rebuilt = MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3))
        rebuilt.set_weights(broadcast_weights.value)
        return rebuilt

    def preprocess(content):
        img = Image.open(io.BytesIO(content)).resize([SIZE, SIZE])
        return preprocess_input(img_to_array(img))

    def featurize_series(model, content_series):
        batch = np.stack(content_series.map(preprocess))
        preds = model.predict(batch, verbose=0)
        return pd.Series([p.flatten() for p in preds])

    @pandas_udf("array<float>", PandasUDFType.SCALAR_ITER)
    def featurize_udf(content_series_iter):
        model = model_fn()
        for content_series in content_series_iter:
            yield featurize_series(model, content_series)

    features = images.repartition(20).select(F.col("path"), F.col("label"), featurize_udf("content").alias("features"))
    features.write.mode("overwrite").parquet(output + "/features_raw")

    frame = spark.read.parquet(output + "/features_raw").withColumn("vector", array_to_vector("features"))
    scaled = (
        StandardScaler(inputCol="vector", outputCol="scaled", withMean=True, withStd=True).fit(frame).transform(frame)
    )
    dim = len(frame.first()["features"])
    pca = PCA(k=dim, inputCol="scaled", outputCol="pca_all").fit(scaled)
    k = choose_k(pca.explainedVariance.toArray(), variance)
    sliced = VectorSlicer(inputCol="pca_all", outputCol="pca_vector", indices=list(range(k))).transform(
        pca.transform(scaled)
    )
    result = sliced.select("path", "label", vector_to_array("pca_vector").alias("pca"))
    result.write.mode("overwrite").parquet(output + "/features")
    return {"k": k}
