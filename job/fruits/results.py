"""Read a finished run (manifest, features, errors) without Spark: local folders or S3.

Only a run with a manifest is finished; anything else is refused with the reason.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fruits.errors import UserError
from fruits.output import ERRORS, FEATURES, IN_PROGRESS, MANIFEST
from fruits.s3a import is_s3


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it; S3 honours the standard AWS variables."""
    if is_s3(uri):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        options = {"region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
        if endpoint:
            scheme, _, host = endpoint.rpartition("://")
            options.update(endpoint_override=host.rstrip("/"), scheme=scheme or "https")
        return pafs.S3FileSystem(**options), uri.split("://", 1)[1].rstrip("/")
    path = uri[len("file:"):] if uri.startswith("file:") else uri
    return pafs.LocalFileSystem(), str(Path(path).resolve())


@dataclass
class RunResults:
    uri: str
    manifest: dict
    features: pa.Table  # path, label, split, pca (features left out: large and not needed)
    errors: pa.Table
    fs: pafs.FileSystem

    def read_image(self, path: str) -> bytes | None:
        """Bytes of an input image named in the results, if it can still be reached."""
        try:
            fs, inner = filesystem_for(path) if is_s3(path) else (pafs.LocalFileSystem(), path.split(":", 1)[-1])
            with fs.open_input_file(inner) as handle:
                return handle.read()
        except (OSError, pa.ArrowException):
            return None


def open_run(uri: str, columns=("path", "label", "split", "pca")) -> RunResults:
    fs, root = filesystem_for(uri)
    try:
        info = fs.get_file_info([f"{root}/{MANIFEST}", f"{root}/{IN_PROGRESS}", root])
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"Cannot reach {uri!r}: {str(exc).splitlines()[0]}") from None
    manifest_info, marker_info, root_info = info
    if manifest_info.type == pafs.FileType.NotFound:
        if root_info.type == pafs.FileType.NotFound:
            raise UserError(f"No run output at {uri!r}: check the path (a folder or s3:// prefix given as --output).")
        if marker_info.type != pafs.FileType.NotFound:
            raise UserError(f"{uri!r} holds a run that has not finished (no manifest.json, still marked in "
                            "progress): wait for it, or rerun the job.")
        raise UserError(f"{uri!r} has no manifest.json: it is not a finished run (incomplete or not a run output).")
    with fs.open_input_stream(f"{root}/{MANIFEST}") as handle:
        manifest = json.loads(handle.read())
    features = pq.read_table(f"{root}/{FEATURES}", filesystem=fs, columns=list(columns))
    errors = pq.read_table(f"{root}/{ERRORS}", filesystem=fs)
    return RunResults(uri, manifest, features, errors, fs)
