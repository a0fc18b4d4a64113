"""The least-privilege S3 policies, from the templates in deploy/iam/ and the values the chart
runs with: a run's (s3-policy.json: the input and the previous run read, the output and the Spark
event logs written) and the History Server's (history-server-policy.json: the event logs listed
and read), nothing else.

    python -m fruits.cluster.iam deploy/iam/s3-policy.json VALUES.yaml   # (make iam-policy [ROLE=history-server])
"""

import json
import string
import sys
from pathlib import Path

import yaml

from fruits.settings.config import LATEST
from fruits.settings.errors import UserError

EVENT_LOG_STATEMENT = "WriteTheSparkEventLogs"
PREVIOUS_STATEMENT = "ReadThePreviousRuns"
OPTIONAL_STATEMENTS = {EVENT_LOG_STATEMENT: "EVENT_LOG_PREFIX", PREVIOUS_STATEMENT: "PREVIOUS_PREFIX"}
CLEANER_STATEMENT = "DeleteExpiredEventLogs"


def _bucket_and_prefix(uri: str | None, what: str) -> tuple[str, str]:
    if not uri or "://" not in uri or uri.split("://", 1)[0] not in ("s3", "s3a", "s3n"):
        raise UserError(f"{what} {uri!r} is not an s3a:// URI: the IAM policy is for runs on S3.")
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    return bucket, prefix.strip("/").replace("{run_id}", "*")  # a scheduled output: every run's folder


def render_policy(template: str, values: dict) -> dict:
    """The policy for the chart `values` (job.input, job.output, job.incrementalFrom or
    job.applyModel, cluster.eventLogDir)."""
    job, cluster = values.get("job") or {}, values.get("cluster") or {}
    places = {
        "INPUT_PREFIX": _bucket_and_prefix(job.get("input"), "job.input"),
        "OUTPUT_PREFIX": _bucket_and_prefix(job.get("output"), "job.output"),
    }
    if cluster.get("eventLogDir"):
        places["EVENT_LOG_PREFIX"] = _bucket_and_prefix(cluster["eventLogDir"], "cluster.eventLogDir")
    for key in ("incrementalFrom", "applyModel"):  # read only: its features or its model
        if job.get(key):
            places["PREVIOUS_PREFIX"] = _bucket_and_prefix(job[key].removeprefix(LATEST), f"job.{key}")
    buckets = {bucket for bucket, _ in places.values()}
    if len(buckets) != 1:
        raise UserError(
            f"The input, output and event logs are in {len(buckets)} buckets ({', '.join(sorted(buckets))}): "
            "the policy template covers one bucket; render one policy per bucket."
        )
    fields = {name: prefix for name, (_, prefix) in places.items()}
    policy = json.loads(string.Template(template).safe_substitute(BUCKET=buckets.pop(), **fields))
    unused = {sid for sid, field in OPTIONAL_STATEMENTS.items() if field not in fields}
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") not in unused]
    return policy


def render_history_server_policy(template: str, values: dict) -> dict:
    """The History Server's policy for the chart `values`: list and read its log directory
    (historyServer.logDirectory, else cluster.eventLogDir), and delete there only when its cleaner
    is on (historyServer.cleaner.enabled)."""
    history, cluster = values.get("historyServer") or {}, values.get("cluster") or {}
    if not (history.get("logDirectory") or cluster.get("eventLogDir")):
        raise UserError("The History Server reads historyServer.logDirectory or cluster.eventLogDir: set one.")
    where = "historyServer.logDirectory" if history.get("logDirectory") else "cluster.eventLogDir"
    bucket, prefix = _bucket_and_prefix(history.get("logDirectory") or cluster.get("eventLogDir"), where)
    if not prefix:  # a whole bucket is not "the event logs"
        raise UserError(f"{where} must name a prefix in its bucket (s3a://{bucket}/spark-events), not the bucket.")
    policy = json.loads(string.Template(template).safe_substitute(BUCKET=bucket, EVENT_LOG_PREFIX=prefix))
    if not (history.get("cleaner") or {}).get("enabled"):
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != CLEANER_STATEMENT]
    return policy


RENDERERS = {"s3-policy.json": render_policy, "history-server-policy.json": render_history_server_policy}


if __name__ == "__main__":
    if len(sys.argv) != 3 or Path(sys.argv[1]).name not in RENDERERS:
        templates = ", ".join(f"deploy/iam/{name}" for name in RENDERERS)
        raise SystemExit(f"{__doc__.strip().splitlines()[-1].strip()}\n(templates: {templates})")
    values = yaml.safe_load(Path(sys.argv[2]).read_text()) or {}
    try:
        render = RENDERERS[Path(sys.argv[1]).name]
        print(json.dumps(render(Path(sys.argv[1]).read_text(), values), indent=2))
    except UserError as exc:
        raise SystemExit(f"Error: {exc}") from None
