"""The fitted scaler + PCA, saved in Spark ML's PipelineModel layout by writing its files
directly: PipelineModel.load(OUTPUT/model) reads them back (tested).

PipelineModel.save runs several tiny Spark jobs per stage, one after the other: about a
second at the end of every run here, for a few small files. The layout is Spark ML's
stable one: per stage, the one-line JSON of DefaultParamsWriter (produced by Spark itself)
and one Parquet row of vectors and matrices in their UDT form.
"""

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.ml import PipelineModel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel, StandardScalerModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.sql import SparkSession

from fruits.storage import Store
from fruits.reduce import FEATURES_VECTOR, PCA_VECTOR, Reduction, reduction_of

_INTS = pa.list_(pa.field("element", pa.int32(), nullable=False))
_DOUBLES = pa.list_(pa.field("element", pa.float64(), nullable=False))
# The physical form of Spark ML's VectorUDT and MatrixUDT (their sqlType).
_VECTOR = pa.struct([pa.field("type", pa.int8(), nullable=False), ("size", pa.int32()), ("indices", _INTS),
                     ("values", _DOUBLES)])
_MATRIX = pa.struct([pa.field("type", pa.int8(), nullable=False), pa.field("numRows", pa.int32(), nullable=False),
                     pa.field("numCols", pa.int32(), nullable=False), ("colPtrs", _INTS), ("rowIndices", _INTS),
                     ("values", _DOUBLES), pa.field("isTransposed", pa.bool_(), nullable=False)])
_DENSE = 1


def _dense(values: np.ndarray) -> pa.ListArray:
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    return pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), pa.array(flat), type=_DOUBLES)


def _vector(values: np.ndarray) -> pa.StructArray:
    """A DenseVector in VectorUDT form: type 1, no size or indices, the values."""
    return pa.StructArray.from_arrays(
        [pa.array([_DENSE], pa.int8()), pa.nulls(1, pa.int32()), pa.nulls(1, _INTS), _dense(values)],
        fields=list(_VECTOR))


def _matrix(values: np.ndarray) -> pa.StructArray:
    """A DenseMatrix in MatrixUDT form: values column-major, not transposed."""
    rows, columns = values.shape
    return pa.StructArray.from_arrays(
        [pa.array([_DENSE], pa.int8()), pa.array([rows], pa.int32()), pa.array([columns], pa.int32()),
         pa.nulls(1, _INTS), pa.nulls(1, _INTS), _dense(values.T), pa.array([False])], fields=list(_MATRIX))


def _stage_data(spark: SparkSession, columns: dict[str, pa.StructArray]) -> pa.Table:
    """A stage's one data row, with the Spark schema (UDT columns) that Spark's reader restores."""
    types = spark.sparkContext._jvm.org.apache.spark.ml.linalg.SQLDataTypes
    udt = {_VECTOR: types.VectorType().json(), _MATRIX: types.MatrixType().json()}
    spark_schema = {"type": "struct", "fields": [
        {"name": name, "type": json.loads(udt[column.type]), "nullable": True, "metadata": {}}
        for name, column in columns.items()]}
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(
        [(name, column.type) for name, column in columns.items()],
        metadata={"org.apache.spark.sql.parquet.row.metadata": json.dumps(spark_schema)}))


def _stages(spark: SparkSession, k: int) -> list:
    """The two stages with their params, for Spark's own metadata writer. Their JVM objects
    hold 1-element placeholders: the metadata holds params only, and the real vectors and
    matrix (written as the stages' data) would cost a py4j copy of d x k doubles."""
    sc, jvm = spark.sparkContext, spark.sparkContext._jvm
    one = _py2java(sc, DenseVector([1.0]))
    scaler = StandardScalerModel(jvm.org.apache.spark.ml.feature.StandardScalerModel(
        StandardScalerModel._randomUID(), one, one))
    scaler._set(inputCol=FEATURES_VECTOR, outputCol="scaled", withMean=True, withStd=True)
    pca = PCAModel(jvm.org.apache.spark.ml.feature.PCAModel(
        PCAModel._randomUID(), _py2java(sc, DenseMatrix(1, 1, [1.0])), one))
    pca._set(inputCol="scaled", outputCol=PCA_VECTOR, k=k)
    return [scaler, pca]


def save_pipeline_model(spark: SparkSession, reduction: Reduction, store: Store, folder: str) -> None:
    """Write the reduction as a Spark ML PipelineModel (StandardScalerModel -> PCAModel) under
    store/folder: Spark's metadata for the stages' params, their data from the NumPy arrays."""
    jvm, sc = spark.sparkContext._jvm, spark.sparkContext._jsc.sc()
    stages = _stages(spark, reduction.k)
    explained = np.asarray(reduction.explained_variance[: reduction.k])
    data = [{"std": _vector(reduction.std), "mean": _vector(reduction.mean)},
            {"pc": _matrix(reduction.components), "explainedVariance": _vector(explained)}]
    for index, (stage, columns) in enumerate(zip(stages, data)):
        stage._transfer_params_to_java()
        metadata = jvm.org.apache.spark.ml.util.DefaultParamsWriter.getMetadataToSave(
            stage._java_obj, sc, jvm.scala.Option.empty(), jvm.scala.Option.empty())
        stage_folder = f"{folder}/stages/{index}_{stage.uid}"
        store.write_text(f"{stage_folder}/metadata/part-00000", metadata)
        store.write(f"{stage_folder}/data/part-00000.parquet", _stage_data(spark, columns))
    pipeline = {"class": "org.apache.spark.ml.PipelineModel", "timestamp": int(time.time() * 1000),
                "sparkVersion": spark.version, "uid": PipelineModel._randomUID(),
                "paramMap": {"stageUids": [stage.uid for stage in stages]}, "defaultParamMap": {}}
    store.write_text(f"{folder}/metadata/part-00000", json.dumps(pipeline, separators=(",", ":")))


def _stage_row(store: Store, stage_folder: str) -> dict:
    """The one data row of a saved stage (ours, or Spark's own PipelineModel.save)."""
    files = [name for name in store.files(f"{stage_folder}/data") if name.endswith(".parquet")
             and not name.startswith(("_", "."))]
    for name in files:
        with store.filesystem.open_input_file(store.path(f"{stage_folder}/data/{name}")) as handle:
            rows = pq.read_table(handle).to_pylist()
        if rows:
            return rows[0]
    raise FileNotFoundError(f"{store.uri_of(store.path(stage_folder))}/data holds no row")


def load_reduction(store: Store, folder: str, fit_rows: int = 0) -> Reduction:
    """A saved StandardScalerModel -> PCAModel pipeline (save_pipeline_model's layout, which is
    Spark ML's) back as a Reduction, with pyarrow alone: a run that applies an earlier run's
    model needs no JVM round trip for d x k doubles. Raises FileNotFoundError when a part is
    missing."""
    stages = sorted(name for name, kind in store.children(f"{folder}/stages").items()
                    if kind == pafs.FileType.Directory)
    if len(stages) != 2:
        raise FileNotFoundError(f"{store.uri_of(store.path(folder))} holds {len(stages)} stages, not the scaler and PCA")
    scaler, pca = (_stage_row(store, f"{folder}/stages/{name}") for name in stages)
    mean, std = (np.asarray(scaler[name]["values"], dtype=np.float64) for name in ("mean", "std"))
    matrix = pca["pc"]
    values = np.asarray(matrix["values"], dtype=np.float64)
    shape = (matrix["numRows"], matrix["numCols"])
    components = values.reshape(shape) if matrix["isTransposed"] else values.reshape(shape[::-1]).T
    explained = [float(v) for v in pca["explainedVariance"]["values"]]
    return reduction_of(mean, std, components, explained, fit_rows)
