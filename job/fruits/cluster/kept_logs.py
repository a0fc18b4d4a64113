"""The driver's log a run kept under its output (`_logs/`, fruits.write.run_log), read with
boto3 for `fruitsctl logs` once the driver pod is gone (the operator's TTL, a history limit)."""

import os
from collections.abc import Iterator

from fruits.io.upload import explain_client_error, parse_s3_uri, s3_client
from fruits.settings.config import KEPT_LOGS
from fruits.settings.errors import UserError


def argument(arguments: list[str], flag: str) -> str | None:
    """The value of `flag` in a job's argument list (the last one given), else None."""
    found = None
    for at, item in enumerate(arguments[:-1]):
        if item == flag:
            found = arguments[at + 1]
    return found


def job_arguments_of(app: dict) -> list[str]:
    return list((app.get("spec") or {}).get("arguments") or [])


def kept_logs_of(app: dict) -> tuple[str, str]:
    """(the s3a:// folder the run's logs are kept in, its run id) from its SparkApplication:
    the job's --output with {run_id} filled, the run id being --run-id or the app's name."""
    arguments = job_arguments_of(app)
    name = app["metadata"]["name"]
    run_id = argument(arguments, "--run-id") or name
    output = argument(arguments, "--output")
    if not output:
        raise UserError(f"{name} names no --output in its arguments: it keeps no log to read.")
    return f"{output.replace('{run_id}', run_id).rstrip('/')}/{KEPT_LOGS}", run_id


def newest_kept_log(app: dict, endpoint: str | None) -> tuple[str, Iterator[str]]:
    """The newest log the run kept (its last attempt) and its lines; a clear error if none."""
    folder, run_id = kept_logs_of(app)
    bucket, prefix = parse_s3_uri(folder)
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or argument(job_arguments_of(app), "--s3-endpoint")
    client = s3_client(endpoint)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{run_id}-")
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
        if not keys:
            raise UserError(
                f"The driver pod of {app['metadata']['name']} is gone and no log was kept in {folder}/ (a run "
                "keeps one once it holds its output): `fruitsctl events` may still say why it ended."
            )
        body = client.get_object(Bucket=bucket, Key=keys[-1])["Body"].read().decode("utf-8", errors="replace")
    except UserError:
        raise
    except Exception as exc:
        raise UserError(explain_client_error(exc, bucket, endpoint or "AWS S3")) from None
    return f"s3a://{bucket}/{keys[-1]}", iter(body.splitlines())
