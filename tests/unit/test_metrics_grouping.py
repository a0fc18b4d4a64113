"""How a run's metrics are grouped and classified: a schedule's nightly runs share one series."""

import pytest

from fruits.settings.config import build_config
from fruits.settings.errors import StorageError, UserError, worker_errors_as_user_errors, worker_user_error
from fruits.write.run_metrics import failure_class, job_key, output_prefix


@pytest.mark.parametrize(
    "app, key",
    [
        ("nightly-fruits-pipeline-1764817200123456789", "nightly-fruits-pipeline"),  # a scheduled run (ns)
        ("nightly-fruits-pipeline-1764817200", "nightly-fruits-pipeline"),  # (seconds precision)
        ("fruits-20261204-030000-ab12cd", "fruits-20261204-030000-ab12cd"),  # fruitsctl submit's own name
        ("fr-2", "fr-2"),
        (None, "fruits"),  # not on Kubernetes
    ],
)
def test_the_job_key_is_the_application_without_a_schedule_s_suffix(app, key):
    assert job_key(app) == key


@pytest.mark.parametrize(
    "output, prefix",
    [
        ("s3a://fruits/runs/{run_id}", "s3a://fruits/runs"),
        ("s3a://fruits/runs/nightly-{run_id}", "s3a://fruits/runs/nightly-"),
        ("s3a://fruits/runs/one", "s3a://fruits/runs/one"),
    ],
)
def test_the_output_prefix_is_what_every_run_of_a_series_shares(output, prefix):
    assert output_prefix(output) == prefix


def test_failures_are_classed_for_alerts():
    assert failure_class(StorageError("Cannot reach the S3 endpoint")) == "storage"
    assert failure_class(UserError("Input 'x' does not exist")) == "user_error"
    assert failure_class(RuntimeError("Py4JJavaError: executor lost")) == "infrastructure"
    assert failure_class(KeyboardInterrupt()) == "infrastructure"


def test_a_worker_s_storage_error_stays_a_storage_error_on_the_driver():
    text = f"Py4JJavaError: ... PythonException: {worker_user_error('Reading x kept failing', storage=True)} ..."
    with pytest.raises(StorageError, match=r"^Reading x kept failing$"), worker_errors_as_user_errors():
        raise RuntimeError(text)
    with pytest.raises(UserError, match=r"^bad image$") as caught, worker_errors_as_user_errors():
        raise RuntimeError(f"... {worker_user_error('bad image')} ...")
    assert not isinstance(caught.value, StorageError)


def test_a_metrics_url_that_is_not_http_is_refused_in_one_sentence():
    with pytest.raises(UserError, match=r"--metrics-url 'pushgateway:9091' is not an http:// or https:// URL"):
        build_config({"metrics_url": "pushgateway:9091"})
