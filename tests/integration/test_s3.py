"""S3 for real: moto's S3 server on 127.0.0.1, reached through boto3 (upload) and S3A (the job)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import moto.settings
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.io.output import IN_PROGRESS
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.settings.errors import UserError
from support.console_text import flat

BUCKET = "fruits"
runner = CliRunner()


@pytest.fixture(scope="module")
def s3(s3_server):
    client = boto3.client("s3")  # endpoint, region and keys from the standard AWS variables
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def uploaded(s3, sample_dir):
    first = runner.invoke(app, ["upload", str(sample_dir), f"s3://{BUCKET}/sample"])
    second = runner.invoke(app, ["upload", str(sample_dir), f"s3://{BUCKET}/sample", "--workers", "4"])
    return first, second


def s3_config(**options):
    return build_config({"s3_path_style": True, "s3_credentials": "static", **options})


def test_upload_keeps_the_layout_and_a_rerun_uploads_nothing(uploaded, s3):
    first, second = uploaded
    assert first.exit_code == 0, first.output
    assert "uploaded 648" in flat(first.output) and "skipped (already there) 0" in flat(first.output)
    assert "not images, left out 1 (e.g. SOURCE.txt" in flat(first.output)
    assert second.exit_code == 0, second.output
    assert "uploaded 0" in flat(second.output) and "skipped (already there) 648" in flat(second.output)
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="sample/")
        for o in page.get("Contents", [])
    ]
    assert len(keys) == 648 and "sample/Apple Braeburn/100_100.jpg" in keys
    head = s3.head_object(Bucket=BUCKET, Key="sample/Apple Braeburn/100_100.jpg")
    assert len(head["Metadata"]["sha256"]) == 64 and head["ContentType"] == "image/jpeg"


def test_upload_replaces_a_changed_file(uploaded, s3, sample_dir, tmp_path):
    folder = tmp_path / "ds" / "Kiwi"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes((sample_dir / "Kiwi").glob("*.jpg").__next__().read_bytes())
    assert runner.invoke(app, ["upload", str(tmp_path / "ds"), f"s3://{BUCKET}/changing"]).exit_code == 0
    (folder / "a.jpg").write_bytes(next((sample_dir / "Lemon").glob("*.jpg")).read_bytes())
    again = runner.invoke(app, ["upload", str(tmp_path / "ds"), f"s3://{BUCKET}/changing"])
    assert "uploaded 1" in flat(again.output)


@pytest.mark.parametrize(
    "make_source, destination, message",
    [
        (lambda p: p / "missing", "s3://fruits/x", "does not exist: give the dataset's root folder"),
        (lambda p: p, "/local/path", "is not an S3 URI: write it as s3://bucket/prefix"),
        (lambda p: p, "s3://no-such-bucket/x", "S3 bucket 'no-such-bucket' does not exist"),
    ],
)
def test_upload_errors(s3, sample_dir, tmp_path, make_source, destination, message):
    (tmp_path / "Kiwi").mkdir()
    (tmp_path / "Kiwi" / "a.jpg").write_bytes(next((sample_dir / "Kiwi").glob("*.jpg")).read_bytes())
    result = runner.invoke(app, ["upload", str(make_source(tmp_path)), destination])
    assert result.exit_code == 2 and message in flat(result.output), result.output


def test_upload_leaves_out_non_images_unless_asked(s3, sample_dir, tmp_path):
    (tmp_path / "Kiwi").mkdir()
    (tmp_path / "Kiwi" / "notes.txt").write_text("hello")
    (tmp_path / ".DS_Store").write_text("hidden files are never uploaded")
    refused = runner.invoke(app, ["upload", str(tmp_path), f"s3://{BUCKET}/notes"])
    assert refused.exit_code == 2 and "No image files (.jpg, .jpeg, .png) to upload" in flat(refused.output)
    (tmp_path / "Kiwi" / "a.jpg").write_bytes(next((sample_dir / "Kiwi").glob("*.jpg")).read_bytes())
    images_only = runner.invoke(app, ["upload", str(tmp_path), f"s3://{BUCKET}/notes"])
    assert images_only.exit_code == 0 and "uploaded 1" in flat(images_only.output)
    assert "not images, left out 1 (e.g. Kiwi/notes.txt" in flat(images_only.output)
    everything = runner.invoke(app, ["upload", str(tmp_path), f"s3://{BUCKET}/notes", "--include-non-images"])
    assert everything.exit_code == 0 and "uploaded 1" in flat(everything.output)  # notes.txt; a.jpg is there
    assert "skipped (already there) 1" in flat(everything.output)


@pytest.fixture(scope="module")
def s3_run(spark, uploaded, s3, weights):
    # What a killed earlier attempt left behind: a marker and a half-written part file.
    s3.put_object(Bucket=BUCKET, Key="runs/r1/" + IN_PROGRESS, Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="runs/r1/features/part-00000-dead.snappy.parquet", Body=b"half")
    config = s3_config(input=f"s3a://{BUCKET}/sample", output=f"s3a://{BUCKET}/runs/r1", weights=weights)
    manifest = run_job(spark, config)
    features = spark.read.parquet(f"s3a://{BUCKET}/runs/r1/features").toPandas()
    return manifest, features


def test_the_job_reads_and_writes_s3_with_the_same_results_as_local_files(s3_run, sample_run):
    manifest, features = s3_run
    _, local_manifest, local_features = sample_run
    assert manifest["counts"] == {
        "read": 648,
        "ok": 648,
        "failed": 0,
        "skipped": {},
        "read_retries": 0,
    }  # upload left SOURCE.txt out
    assert local_manifest["counts"] == {**manifest["counts"], "skipped": {"not an image (extension)": 1}}
    assert manifest["pca"]["k"] == local_manifest["pca"]["k"]
    assert manifest["labels"] == local_manifest["labels"]

    def by_file(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(file=frame["path"].str.split("/").str[-2:].str.join("/")).set_index("file").sort_index()

    s3_rows, local_rows = by_file(features), by_file(local_features)
    assert list(s3_rows.index) == list(local_rows.index)
    np.testing.assert_allclose(np.stack(s3_rows["features"]), np.stack(local_rows["features"]), atol=1e-4)
    np.testing.assert_allclose(np.abs(np.stack(s3_rows["pca"])), np.abs(np.stack(local_rows["pca"])), atol=1e-2)


def test_s3_output_is_complete_and_the_dead_attempt_is_gone(s3_run, s3):
    manifest, _ = s3_run
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/r1/")["Contents"]}
    assert "runs/r1/manifest.json" in keys and "runs/r1/" + IN_PROGRESS not in keys
    assert "runs/r1/features/part-00000-dead.snappy.parquet" not in keys
    assert any(k.startswith("runs/r1/model/") for k in keys) and any(k.startswith("runs/r1/errors/") for k in keys)
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/r1/manifest.json")["Body"].read())
    assert stored["run_id"] == manifest["run_id"] and stored["output"] == f"s3a://{BUCKET}/runs/r1"


def test_a_finished_s3_output_is_not_overwritten(s3_run, spark, weights):
    config = s3_config(input=f"s3a://{BUCKET}/sample", output=f"s3a://{BUCKET}/runs/r1", weights=weights)
    with pytest.raises(UserError, match="already holds a finished run"):
        run_job(spark, config)


def test_missing_bucket(spark, s3, weights):
    config = s3_config(input="s3a://no-such-bucket/images", output=f"s3a://{BUCKET}/out-x", weights=weights)
    with pytest.raises(UserError, match="S3 bucket 'no-such-bucket' does not exist"):
        run_job(spark, config)


def test_empty_input_prefix(spark, s3, weights):
    config = s3_config(input=f"s3a://{BUCKET}/nothing-here", output=f"s3a://{BUCKET}/out-y", weights=weights)
    with pytest.raises(UserError, match="matches no S3 objects: check the bucket and prefix in --input"):
        run_job(spark, config)


def test_unreachable_endpoint(spark, weights):
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in {
        "fs.s3a.attempts.maximum": "1",
        "fs.s3a.retry.limit": "1",
        "fs.s3a.connection.establish.timeout": "2000",
    }.items():
        hadoop.set(key, value)
    config = s3_config(
        input="s3a://unreachable-bucket/images",
        output="s3a://unreachable-bucket/out",
        weights=weights,
        s3_endpoint="http://127.0.0.1:9",
    )
    with pytest.raises(UserError, match=re.escape("Cannot reach the S3 endpoint http://127.0.0.1:9")):
        run_job(spark, config)


def test_access_denied(spark, s3, uploaded, weights, monkeypatch):
    s3.create_bucket(Bucket="locked")
    s3.copy_object(
        Bucket="locked", Key="in/Kiwi/a.jpg", CopySource={"Bucket": BUCKET, "Key": "sample/Kiwi/107_100.jpg"}
    )
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto now checks credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    config = s3_config(input="s3a://locked/in", output="s3a://locked/out", weights=weights)
    with pytest.raises(UserError, match="Access denied to 's3a://locked/in' \\(credentials: static\\): check the keys"):
        run_job(spark, config)


def test_report_and_evaluate_read_an_s3_output(s3_run, tmp_path):
    # The job's own S3 options: the endpoint comes from $AWS_ENDPOINT_URL, like the job's.
    result = runner.invoke(app, ["report", f"s3://{BUCKET}/runs/r1", "--to", str(tmp_path), "--s3-path-style"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/jpeg;base64,') == 18 * 4  # thumbnails fetched from S3
    evaluation = runner.invoke(
        app, ["evaluate", f"s3a://{BUCKET}/runs/r1", "--json", "--to", str(tmp_path), "--s3-path-style"]
    )
    assert evaluation.exit_code == 0 and json.loads(evaluation.output)["accuracy"] >= 0.9


def test_report_takes_its_s3_settings_from_a_config_file(s3_run, tmp_path):
    settings = tmp_path / "s3.yaml"
    settings.write_text("s3_path_style: true\ns3_credentials: static\n")
    result = runner.invoke(
        app, ["evaluate", f"s3://{BUCKET}/runs/r1", "--json", "--config", str(settings), "--to", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.output)
    assert evaluation["train_images"] + evaluation["test_images"] == 648


def test_an_s3_event_log_opens_with_the_jobs_own_s3_settings(s3, s3_server, sample_dir, weights, tmp_path):
    """Spark opens its event log directory while the SparkContext starts: the job's S3
    settings must already be there (the endpoint only in the job's options here)."""
    source = tmp_path / "in" / "Kiwi"
    source.mkdir(parents=True)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        shutil.copy(image, source / image.name)
    s3.put_object(Bucket=BUCKET, Key="spark-events/", Body=b"")  # Spark requires the folder to exist (docs: S3)
    environ = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_REGION")}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "fruitsctl"),
            "run",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "out"),
            "--weights",
            weights,
            "--k",
            "2",
            "--spark-conf",
            "spark.ui.enabled=false",
            "--spark-conf",
            "spark.eventLog.enabled=true",
            "--spark-conf",
            f"spark.eventLog.dir=s3a://{BUCKET}/spark-events",
            "--s3-endpoint",
            s3_server,
            "--s3-path-style",
            "--s3-credentials",
            "static",
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    logs = [
        o
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="spark-events/").get("Contents", [])
        if o["Key"] != "spark-events/"
    ]
    assert logs and logs[0]["Size"] > 0


def test_an_incremental_run_and_a_transform_on_s3(s3_run, spark, s3, weights):
    first, _ = s3_run
    later = run_job(
        spark,
        s3_config(
            input=f"s3a://{BUCKET}/sample",
            output=f"s3a://{BUCKET}/runs/r2",
            weights=weights,
            incremental_from=f"latest:s3a://{BUCKET}/runs",
        ),
    )
    assert later["incremental"]["previous_run_id"] == first["run_id"]
    assert later["incremental"]["reused"] == first["counts"]["ok"] and later["incremental"]["featurized"] == 0
    assert later["pca"]["k"] == first["pca"]["k"]
    applied = run_job(
        spark,
        s3_config(
            input=f"s3a://{BUCKET}/sample/Kiwi", output=f"s3a://{BUCKET}/applied", apply_model=f"s3a://{BUCKET}/runs/r1"
        ),
    )
    assert applied["pca"]["fitted_by"]["run_id"] == first["run_id"] and applied["config"]["weights"] == weights
    rows = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="applied/")["Contents"]}
    assert "applied/manifest.json" in rows and "applied/model/metadata/part-00000" in rows


def test_an_unfinished_s3_previous_run_is_refused(spark, s3, uploaded, weights):
    s3.put_object(Bucket=BUCKET, Key="dead/" + IN_PROGRESS, Body=b"{}")
    with pytest.raises(UserError, match="holds no finished run"):
        run_job(
            spark,
            s3_config(
                input=f"s3a://{BUCKET}/sample",
                output=f"s3a://{BUCKET}/runs/r3",
                weights=weights,
                incremental_from=f"s3a://{BUCKET}/dead",
            ),
        )
