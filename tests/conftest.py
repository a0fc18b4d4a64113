"""Shared fixtures: the ../shared test assets, one SparkSession per test run."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE = SHARED / "data" / "fruits360-sample"
WEIGHTS = SHARED / "models" / "mobilenet_v2_backbone.weights.h5"
CRDS = SHARED / "crds"


def require_shared(path: Path) -> Path:
    """Tests that need ../shared fail loudly (never skip) when it is missing."""
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need the shared assets folder beside the project "
                    f"(expected at {SHARED}).", pytrace=False)
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return require_shared(SAMPLE)


@pytest.fixture(scope="session")
def weights() -> str:
    return str(require_shared(WEIGHTS))


@pytest.fixture(scope="session")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from fruits.spark_session import local_spark

    session = local_spark("local[2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()
