"""IAM proven against the job: moto's server enforcing IAM, the job and `fruitsctl report` run as
a principal holding exactly the policy `make iam-policy` renders from deploy/iam/s3-policy.json
for the chart's values (input, output, event logs).

The job's own S3 traffic (listing, reading the images, writing and committing every result
file) goes through pyarrow, which moto's IAM check serves. Spark's S3A connector (SDK v1),
which writes the event logs, gets 403 from moto's IAM check even with s3:* (the previous
session's finding, reproduced), so the event-log statement is proven with the SDK's own
calls as the principal: the writes Spark's event log makes. The History Server's policy
(deploy/iam/history-server-policy.json) is proven the same way, as the reads it makes. For the
same reason the runs here fit no classifier head (`--classifier none`): the head reads the
staged features back through S3A (ListBucket on the bucket, GetObject under the output prefix:
actions the pyarrow reads here already prove the policy grants)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import moto.settings
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.cluster.iam import CLEANER_STATEMENT, EVENT_LOG_STATEMENT, render_history_server_policy, render_policy
from fruits.settings.errors import UserError
from support.console_text import flat

ROOT = Path(__file__).resolve().parents[2]
HISTORY_SERVER_TEMPLATE = ROOT / "deploy" / "iam" / "history-server-policy.json"
BUCKET = "iam-fruits"
VALUES = {
    "job": {
        "input": f"s3a://{BUCKET}/photos",
        "output": f"s3a://{BUCKET}/runs/{{run_id}}",
        "incrementalFrom": f"latest:s3a://{BUCKET}/runs",
    },
    "cluster": {"eventLogDir": f"s3a://{BUCKET}/spark-events"},
}
HISTORY_SERVER_VALUES = {**VALUES, "historyServer": {"enabled": True}}
EVENT_LOG = "spark-events/eventlog_v2_spark-0a1b/events_1_spark-0a1b"


@pytest.fixture(scope="module")
def principals(s3_server, sample_dir):
    """The bucket, the images, an event log, and three IAM users: one with the rendered policy, one
    with the same policy less its event-log statement, and the History Server with its own policy.
    IAM is enforced from here on."""
    s3, iam = boto3.client("s3"), boto3.client("iam", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[:4]:
        s3.upload_file(str(image), BUCKET, f"photos/Kiwi/{image.name}")
    s3.put_object(Bucket=BUCKET, Key="spark-events/", Body=b"")
    s3.put_object(Bucket=BUCKET, Key=EVENT_LOG, Body=b'{"Event":"SparkListenerLogStart"}\n')
    policy = render_policy((ROOT / "deploy" / "iam" / "s3-policy.json").read_text(), VALUES)
    without_logs = {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != EVENT_LOG_STATEMENT]}
    history_server = render_history_server_policy(HISTORY_SERVER_TEMPLATE.read_text(), HISTORY_SERVER_VALUES)
    keys = {}
    for user, document in (("job", policy), ("no-event-logs", without_logs), ("history-server", history_server)):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    saved = moto.settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # every request from now on is checked against IAM
    yield keys
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = saved


def run_as(keys: dict, s3_server: str, output: str, weights: str, *extra: str):
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "fruitsctl"),
            "run",
            "--input",
            f"s3a://{BUCKET}/photos",
            "--output",
            output,
            "--weights",
            weights,
            "--k",
            "2",
            "--s3-endpoint",
            s3_server,
            "--s3-path-style",
            "--s3-credentials",
            "static",
            "--spark-conf",
            "spark.ui.enabled=false",
            "--classifier",
            "none",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **keys},
    )


def test_the_rendered_policy_lets_the_job_and_report_do_all_they_do(principals, s3_server, weights, tmp_path):
    done = run_as(principals["job"], s3_server, f"s3a://{BUCKET}/runs/r1", weights)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads(
        client(principals["job"]).get_object(Bucket=BUCKET, Key="runs/r1/manifest.json")["Body"].read()
    )
    assert manifest["counts"]["ok"] == 4
    report = CliRunner().invoke(
        app,
        ["report", f"s3://{BUCKET}/runs/r1", "--to", str(tmp_path), "--s3-path-style", "--s3-credentials", "static"],
        env=principals["job"],
    )
    assert report.exit_code == 0, report.output


def test_writing_outside_the_policy_is_denied_in_one_sentence(principals, s3_server, weights):
    done = run_as(principals["job"], s3_server, f"s3a://{BUCKET}/elsewhere/r2", weights)
    assert done.returncode == 2
    assert f"Access denied to 's3a://{BUCKET}/elsewhere/r2' (credentials: static): check the keys or role" in flat(
        done.stdout + done.stderr
    ), done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr


def test_an_incremental_run_reads_the_previous_runs_within_the_policy(principals, s3_server, weights):
    first = run_as(principals["job"], s3_server, f"s3a://{BUCKET}/runs/first", weights)
    assert first.returncode == 0, first.stderr[-3000:]
    later = run_as(
        principals["job"],
        s3_server,
        f"s3a://{BUCKET}/runs/later",
        weights,
        "--incremental-from",
        f"latest:s3a://{BUCKET}/runs",
    )
    assert later.returncode == 0, later.stdout[-3000:] + later.stderr[-3000:]
    manifest = json.loads(
        client(principals["job"]).get_object(Bucket=BUCKET, Key="runs/later/manifest.json")["Body"].read()
    )
    assert manifest["incremental"]["reused"] == 4 and manifest["incremental"]["featurized"] == 0


def test_the_previous_runs_statement_is_there_only_for_runs_that_read_one():
    template = (ROOT / "deploy" / "iam" / "s3-policy.json").read_text()
    with_previous = render_policy(template, VALUES)
    previous = next(s for s in with_previous["Statement"] if s["Sid"] == "ReadThePreviousRuns")
    assert previous["Action"] == ["s3:GetObject"]
    assert previous["Resource"] == [f"arn:aws:s3:::{BUCKET}/runs", f"arn:aws:s3:::{BUCKET}/runs/*"]
    plain = render_policy(
        template, {**VALUES, "job": {k: v for k, v in VALUES["job"].items() if k != "incrementalFrom"}}
    )
    assert "ReadThePreviousRuns" not in {s["Sid"] for s in plain["Statement"]}


def client(keys: dict):
    return boto3.client(
        "s3", aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"]
    )


@pytest.mark.parametrize("user, allowed", [("job", True), ("no-event-logs", False)])
def test_the_event_log_prefix_is_writable_only_with_its_statement(principals, user, allowed):
    """What Spark's event log writer does there: create the log object, look at it, rename it
    (copy + delete) when the application ends."""
    s3 = client(principals[user])
    key = "spark-events/app-20261201-0001.inprogress"
    try:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
        s3.head_object(Bucket=BUCKET, Key=key)
        s3.copy_object(Bucket=BUCKET, Key=key.removesuffix(".inprogress"), CopySource={"Bucket": BUCKET, "Key": key})
        s3.delete_object(Bucket=BUCKET, Key=key)
        denied = False
    except s3.exceptions.ClientError as exc:
        denied = exc.response["Error"]["Code"] in ("AccessDenied", "403")
    assert denied is not allowed


def allowed(call) -> bool:
    try:
        call()
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AccessDenied", "403"):
            raise
        return False


def test_the_history_server_may_list_and_read_the_event_logs_and_nothing_else(principals):
    """What Spark's History Server does on S3A (list the log directory and each application's
    folder, read the logs), allowed; writing, deleting and reading elsewhere, denied."""
    s3 = client(principals["history-server"])
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="spark-events/", Delimiter="/")
    assert [p["Prefix"] for p in listing.get("CommonPrefixes", [])] == ["spark-events/eventlog_v2_spark-0a1b/"]
    assert s3.get_object(Bucket=BUCKET, Key=EVENT_LOG)["Body"].read().startswith(b'{"Event"')
    assert allowed(lambda: s3.head_object(Bucket=BUCKET, Key="spark-events/"))
    assert not allowed(lambda: s3.put_object(Bucket=BUCKET, Key="spark-events/forged", Body=b"{}"))
    assert not allowed(lambda: s3.delete_object(Bucket=BUCKET, Key=EVENT_LOG))
    assert not allowed(lambda: s3.get_object(Bucket=BUCKET, Key="photos/Kiwi/" + photo_name(principals)))


def photo_name(principals) -> str:
    listing = client(principals["job"]).list_objects_v2(Bucket=BUCKET, Prefix="photos/Kiwi/")
    return listing["Contents"][0]["Key"].rsplit("/", 1)[1]


def test_the_history_server_policy_lists_only_its_prefix_and_deletes_only_with_the_cleaner():
    """moto does not evaluate the s3:prefix condition, so the listing's limit is checked here."""
    template = HISTORY_SERVER_TEMPLATE.read_text()
    policy = render_history_server_policy(template, HISTORY_SERVER_VALUES)
    listing = next(s for s in policy["Statement"] if "s3:ListBucket" in s["Action"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["spark-events", "spark-events/*"]}}
    actions = {action for s in policy["Statement"] for action in s["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"}
    cleaning = render_history_server_policy(
        template, {**VALUES, "historyServer": {"enabled": True, "cleaner": {"enabled": True}}}
    )
    (delete,) = [s for s in cleaning["Statement"] if s["Sid"] == CLEANER_STATEMENT]
    assert delete["Action"] == ["s3:DeleteObject"] and delete["Resource"] == [f"arn:aws:s3:::{BUCKET}/spark-events/*"]
    own = render_history_server_policy(template, {"historyServer": {"logDirectory": "s3a://logs/spark/events/"}})
    assert {r for s in own["Statement"] for r in [s["Resource"]] if isinstance(r, str)} == {"arn:aws:s3:::logs"}
    with pytest.raises(UserError, match="must name a prefix"):
        render_history_server_policy(template, {"cluster": {"eventLogDir": "s3a://logs"}})
