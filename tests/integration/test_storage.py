"""Parquet files the job writes itself: committed whole or not at all, locally and on S3 (moto)."""

import boto3
import numpy as np
import pyarrow as pa
import pytest

from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store
from fruits.io.vectors import from_arrow, to_arrow
from fruits.settings.config import build_config

TABLE = pa.table({"path": ["a", "b"], "features": to_arrow(np.arange(6, dtype=np.float32).reshape(2, 3))})


def test_vectors_round_trip_through_arrow_and_nulls_mark_missing_rows():
    matrix = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(from_arrow(to_arrow(matrix)), matrix)
    missing = np.array([False, True, False, False, False])
    assert to_arrow(matrix, missing).null_count == 1


def write_then_fail(store: Store, name: str):
    with pytest.raises(RuntimeError, match="task killed"), store.writer(name, TABLE.schema) as writer:
        writer.write_table(TABLE)
        raise RuntimeError("task killed half-way")


def stores(tmp_path, s3_server):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="store")
    s3 = S3Settings.of(build_config({"s3_path_style": True, "s3_credentials": "static"}))
    return [Store.at(str(tmp_path / "out"), s3), Store.at("s3a://store/out", s3)]


def test_a_file_appears_whole_or_not_at_all_and_a_retry_replaces_it(tmp_path, s3_server):
    for store in stores(tmp_path, s3_server):
        write_then_fail(store, "features/part-00000.parquet")
        assert store.files("features") == []  # no half-written file, no visible temporary
        store.write("features/part-00000.parquet", TABLE)
        store.write("features/part-00000.parquet", TABLE.slice(0, 1))  # the retry of the same task
        assert store.files("features") == ["part-00000.parquet"]
        read = pa.Table.from_batches(list(store.batches("features/part-00000.parquet", 10)))
        assert read.column("path").to_pylist() == ["a"]
        store.delete_dir("features")
        assert store.files("features") == []
