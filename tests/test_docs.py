"""The README documents every option the job has."""

from pathlib import Path

from fruits.cluster.settings import CLUSTER_FIELDS
from fruits.settings.config import FIELDS, flag

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_job_option_is_in_the_readme_table():
    missing = [flag(name) for name in FIELDS if f"| `{flag(name)}` |" not in README]
    assert not missing, f"README options table lacks {missing}"


def test_every_cluster_option_is_in_the_readme_table():
    missing = [flag(name) for name in CLUSTER_FIELDS if f"| `{flag(name)}`" not in README]
    assert not missing, f"README cluster options table lacks {missing}"
