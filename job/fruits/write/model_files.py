"""The fitted scaler + PCA, saved in Spark ML's PipelineModel layout by writing its files
directly: PipelineModel.load(OUTPUT/model) reads them back (tested), and so does
load_reduction here, without Spark.

Why not PipelineModel.save: it needs the model as JVM objects (a py4j copy of d x k doubles)
and runs several tiny Spark jobs per stage, one after the other: 1.8-2.5 s (warm) at the end
of every run here for a few small files, against 0.07-0.12 s written directly (MobileNetV2,
k = 171, PipelineModel.save of the same model). The layout is
Spark ML's documented, stable one (DefaultParamsWriter): per stage, a one-line JSON of its
class, uid, Spark version and params, and one Parquet row of its vectors and matrix in their
UDT form, whose Spark schema comes from pyspark's public VectorUDT and MatrixUDT. No private
API and no JVM call is involved.
"""

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fruits.fit.reduce import FEATURES_VECTOR, PCA_VECTOR, Reduction, reduction_of
from fruits.io.storage import Store

_INTS = pa.list_(pa.field("element", pa.int32(), nullable=False))
_DOUBLES = pa.list_(pa.field("element", pa.float64(), nullable=False))
# The physical form of Spark ML's VectorUDT and MatrixUDT (their sqlType).
_VECTOR = pa.struct(
    [pa.field("type", pa.int8(), nullable=False), ("size", pa.int32()), ("indices", _INTS), ("values", _DOUBLES)]
)
_MATRIX = pa.struct(
    [
        pa.field("type", pa.int8(), nullable=False),
        pa.field("numRows", pa.int32(), nullable=False),
        pa.field("numCols", pa.int32(), nullable=False),
        ("colPtrs", _INTS),
        ("rowIndices", _INTS),
        ("values", _DOUBLES),
        pa.field("isTransposed", pa.bool_(), nullable=False),
    ]
)
_DENSE = 1


def _dense(values: np.ndarray) -> pa.ListArray:
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    return pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), pa.array(flat), type=_DOUBLES)


def _vector(values: np.ndarray) -> pa.StructArray:
    """A DenseVector in VectorUDT form: type 1, no size or indices, the values."""
    return pa.StructArray.from_arrays(
        [pa.array([_DENSE], pa.int8()), pa.nulls(1, pa.int32()), pa.nulls(1, _INTS), _dense(values)],
        fields=list(_VECTOR),
    )


def _matrix(values: np.ndarray) -> pa.StructArray:
    """A DenseMatrix in MatrixUDT form: values column-major, not transposed."""
    rows, columns = values.shape
    return pa.StructArray.from_arrays(
        [
            pa.array([_DENSE], pa.int8()),
            pa.array([rows], pa.int32()),
            pa.array([columns], pa.int32()),
            pa.nulls(1, _INTS),
            pa.nulls(1, _INTS),
            _dense(values.T),
            pa.array([False]),
        ],
        fields=list(_MATRIX),
    )


def _stage_data(columns: dict[str, pa.StructArray]) -> pa.Table:
    """A stage's one data row, with the Spark schema (UDT columns) that Spark's reader restores."""
    from pyspark.ml.linalg import MatrixUDT, VectorUDT  # public; pure Python (no JVM)

    udt = {_VECTOR: json.loads(VectorUDT().json()), _MATRIX: json.loads(MatrixUDT().json())}
    spark_schema = {
        "type": "struct",
        "fields": [
            {"name": name, "type": udt[column.type], "nullable": True, "metadata": {}}
            for name, column in columns.items()
        ],
    }
    return pa.Table.from_arrays(
        list(columns.values()),
        schema=pa.schema(
            [(name, column.type) for name, column in columns.items()],
            metadata={"org.apache.spark.sql.parquet.row.metadata": json.dumps(spark_schema)},
        ),
    )


def _uid(kind: str) -> str:
    """An ML object id as Spark's Identifiable.randomUID makes them."""
    return f"{kind}_{uuid.uuid4().hex[:12]}"


def _metadata(java_class: str, uid: str, spark_version: str, params: dict, defaults: dict) -> str:
    """DefaultParamsWriter's one-line JSON for a stage or the pipeline."""
    return json.dumps(
        {
            "class": java_class,
            "timestamp": int(time.time() * 1000),
            "sparkVersion": spark_version,
            "uid": uid,
            "paramMap": params,
            "defaultParamMap": defaults,
        },
        separators=(",", ":"),
    )


def save_pipeline_model(
    reduction: Reduction, store: Store, folder: str, spark_version: str, head_uids: Sequence[str] = ()
) -> None:
    """Write the reduction as a Spark ML PipelineModel (StandardScalerModel -> PCAModel) under
    store/folder, for Spark `spark_version`'s PipelineModel.load; `head_uids` are the stages
    after them that fruits.write.head_files saved already (the classifier head)."""
    scaler, pca = _uid("StandardScalerModel"), _uid("PCAModel")
    explained = np.asarray(reduction.explained_variance[: reduction.k])
    # (uid, Java class, params, default params, data columns)
    stages: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, pa.StructArray]]] = [
        (
            scaler,
            "org.apache.spark.ml.feature.StandardScalerModel",
            {"inputCol": FEATURES_VECTOR, "outputCol": "scaled", "withMean": True, "withStd": True},
            {"outputCol": f"{scaler}__output", "withMean": False, "withStd": True},
            {"std": _vector(reduction.std), "mean": _vector(reduction.mean)},
        ),
        (
            pca,
            "org.apache.spark.ml.feature.PCAModel",
            {"inputCol": "scaled", "outputCol": PCA_VECTOR, "k": reduction.k},
            {"outputCol": f"{pca}__output"},
            {"pc": _matrix(reduction.components), "explainedVariance": _vector(explained)},
        ),
    ]
    for index, (uid, java_class, params, defaults, data) in enumerate(stages):
        stage_folder = f"{folder}/stages/{index}_{uid}"
        store.write_text(
            f"{stage_folder}/metadata/part-00000", _metadata(java_class, uid, spark_version, params, defaults)
        )
        store.write(f"{stage_folder}/data/part-00000.parquet", _stage_data(data))
    store.write_text(
        f"{folder}/metadata/part-00000",
        _metadata(
            "org.apache.spark.ml.PipelineModel",
            _uid("PipelineModel"),
            spark_version,
            {"stageUids": [scaler, pca, *head_uids]},
            {},
        ),
    )


def stage_row(store: Store, stage_folder: str) -> dict:
    """The one data row of a saved stage (ours, or Spark's own PipelineModel.save)."""
    files = [
        name
        for name in store.files(f"{stage_folder}/data")
        if name.endswith(".parquet") and not name.startswith(("_", "."))
    ]
    for name in files:
        with store.filesystem.open_input_file(store.path(f"{stage_folder}/data/{name}")) as handle:
            rows = pq.read_table(handle).to_pylist()
        if rows:
            return rows[0]
    raise FileNotFoundError(f"{store.uri_of(store.path(stage_folder))}/data holds no row")


def dense_vector(udt: dict) -> np.ndarray:
    """A VectorUDT value as read by pyarrow (dense or sparse) as one NumPy array."""
    values = np.asarray(udt["values"], dtype=np.float64)
    if udt["type"] == _DENSE:
        return values
    vector = np.zeros(udt["size"], dtype=np.float64)
    vector[np.asarray(udt["indices"], dtype=np.int64)] = values
    return vector


def dense_matrix(udt: dict) -> np.ndarray:
    """A MatrixUDT value as read by pyarrow (dense or sparse, either order) as a NumPy array."""
    rows, columns, transposed = udt["numRows"], udt["numCols"], udt["isTransposed"]
    values = np.asarray(udt["values"], dtype=np.float64)
    if udt["type"] == _DENSE:
        return values.reshape(rows, columns) if transposed else values.reshape(columns, rows).T
    matrix = np.zeros((rows, columns) if not transposed else (columns, rows), dtype=np.float64)
    pointers, indices = udt["colPtrs"], udt["rowIndices"]  # compressed columns (rows when transposed)
    for column in range(len(pointers) - 1):
        span = slice(pointers[column], pointers[column + 1])
        matrix[np.asarray(indices[span], dtype=np.int64), column] = values[span]
    return matrix.T if transposed else matrix


def load_reduction(store: Store, folder: str, fit_rows: int = 0) -> Reduction:
    """A saved StandardScalerModel -> PCAModel pipeline (save_pipeline_model's layout, which is
    Spark ML's) back as a Reduction, with pyarrow alone: a run that applies an earlier run's
    model needs no JVM round trip for d x k doubles. Raises FileNotFoundError when a part is
    missing."""
    stages = sorted(
        name
        for name, kind in store.children(f"{folder}/stages").items()
        if kind == pafs.FileType.Directory and name.startswith(("0_", "1_"))  # after them: the head, if any
    )
    if len(stages) != 2:
        raise FileNotFoundError(
            f"{store.uri_of(store.path(folder))} holds {len(stages)} of the scaler and PCA stages, not both"
        )
    scaler, pca = (stage_row(store, f"{folder}/stages/{name}") for name in stages)
    mean, std = (np.asarray(scaler[name]["values"], dtype=np.float64) for name in ("mean", "std"))
    matrix = pca["pc"]
    values = np.asarray(matrix["values"], dtype=np.float64)
    shape = (matrix["numRows"], matrix["numCols"])
    components = values.reshape(shape) if matrix["isTransposed"] else values.reshape(shape[::-1]).T
    explained = [float(v) for v in pca["explainedVariance"]["values"]]
    return reduction_of(mean, std, components, explained, fit_rows)
