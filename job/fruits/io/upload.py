"""Upload a local dataset folder to S3 with boto3: parallel, resumable, layout kept.

A file already in the bucket with the same size and checksum is skipped, so a rerun
uploads nothing. Objects carry their SHA-256 as metadata; single-part ETags (MD5) let
the common case be decided from one listing, without a request per file.
"""

import hashlib
import mimetypes
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from fruits.settings.config import IMAGE_EXTENSIONS
from fruits.settings.errors import UserError

TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024)


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)  # left out: the job would ignore them


def parse_s3_uri(uri: str) -> tuple[str, str]:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3", "s3a") or not rest.split("/", 1)[0]:
        raise UserError(f"Destination {uri!r} is not an S3 URI: write it as s3://bucket/prefix.")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def s3_client(endpoint: str | None = None, region: str | None = None):
    """A boto3 S3 client; boto3 itself reads AWS_ENDPOINT_URL, AWS_PROFILE and the keys, and
    AWS_REGION is honoured here too (botocore reads only AWS_DEFAULT_REGION)."""
    region = region or os.environ.get("AWS_REGION") or None
    return boto3.client("s3", endpoint_url=endpoint or None, region_name=region)


def explain_client_error(exc: Exception, bucket: str, endpoint: str) -> str:
    if isinstance(exc, NoCredentialsError):
        return "No AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE."
    if isinstance(exc, EndpointConnectionError):
        return f"Cannot reach the S3 endpoint {endpoint}: check --s3-endpoint / $AWS_ENDPOINT_URL and the network."
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    if code == "NoSuchBucket":
        return f"S3 bucket {bucket!r} does not exist at {endpoint}: create it or check the name."
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        return (
            f"Access denied to bucket {bucket!r} ({code}): check the credentials and that their policy "
            "allows s3:ListBucket and s3:PutObject on the destination prefix."
        )
    return f"S3 request to bucket {bucket!r} failed: {exc}"


def dataset_files(source: Path, include_non_images: bool = False) -> tuple[list[Path], list[Path]]:
    """(files to upload, non-image files left out) under `source`; hidden files never go."""
    if not source.is_dir():
        raise UserError(f"Source folder {str(source)!r} does not exist: give the dataset's root folder.")
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )
    others = [] if include_non_images else [p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    chosen = [p for p in files if p not in set(others)]
    if not chosen:
        raise UserError(
            f"No image files (.jpg, .jpeg, .png) to upload under {str(source)!r}"
            + (" (pass --include-non-images for other files)." if others else ".")
        )
    return chosen, others


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def _existing_objects(client, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["Size"], item["ETag"].strip('"'))
    return found


def upload_dataset(
    client,
    source: Path,
    destination: str,
    *,
    include_non_images: bool = False,
    workers: int = 8,
    create_bucket: bool = False,
    advance: Callable[[int], None] = lambda n: None,
) -> UploadReport:
    bucket, prefix = parse_s3_uri(destination)
    files, not_images = dataset_files(source, include_non_images)
    endpoint = client.meta.endpoint_url
    try:
        if create_bucket:
            try:
                client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                client.create_bucket(Bucket=bucket)
        existing = _existing_objects(client, bucket, prefix)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(explain_client_error(exc, bucket, endpoint)) from None
    report = UploadReport(not_images=[p.relative_to(source).as_posix() for p in not_images])

    def upload_one(path: Path) -> None:
        key = "/".join(filter(None, [prefix, path.relative_to(source).as_posix()]))
        try:
            md5, sha = _digests(path)
            size, etag = existing.get(key, (None, ""))
            same = size == path.stat().st_size and (
                etag == md5
                or ("-" in etag and client.head_object(Bucket=bucket, Key=key)["Metadata"].get("sha256") == sha)
            )
            if same:
                report.skipped.append(key)
            else:
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                client.upload_file(
                    str(path),
                    bucket,
                    key,
                    Config=TRANSFER,
                    ExtraArgs={"Metadata": {"sha256": sha}, "ContentType": content_type},
                )
                report.uploaded.append(key)
        except (ClientError, BotoCoreError, OSError) as exc:
            report.failed.append(
                (key, explain_client_error(exc, bucket, endpoint) if not isinstance(exc, OSError) else str(exc))
            )
        advance(1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(upload_one, files))
    return report
