"""The job's one way to files: a local folder or an S3 prefix, through pyarrow's filesystems.

The driver lists the input and keeps the output's markers through a `Store`; the Python
workers read the images and write the features through the same `Store` (it pickles into
the tasks): the JVM never carries an image or a feature vector. Spark's own file scan would
(0.45 ms of JVM CPU per image here), and it hides files named `_*`, follows symlink loops and
fails a whole job on one unreadable file.

S3 settings come as an S3Settings value (fruits.io.s3_settings: endpoint, region, addressing,
TLS, credentials mode, bounded timeouts), made once from the job's options; a `Store` never
sees the job's other options. Storage failures become one sentence through the same value
(`storage_errors_as_user_errors`).

Files are committed whole (written under a hidden temporary name, then renamed). Names are
deterministic (one per Spark partition), so a retried or speculative task replaces its own
file instead of adding one.
"""

import hashlib
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fruits.io.s3_settings import ATTEMPTS, S3Settings, is_s3, is_transient, storage_retry_s
from fruits.settings.errors import StorageError, UserError, worker_user_error

READ_AHEAD = 16  # S3 objects requested at once per task: small images are latency-bound
HADOOP_GLOB_CHARS = "\\{}[]*?"  # what Hadoop's file readers (Spark's, PipelineModel.load's) treat as a glob


def hadoop_literal(uri: str) -> str:
    """`uri` as Hadoop's globbing readers must be given it to read that very path: an output
    folder may be named `out [1]` or `a{b}`, which Hadoop would otherwise parse as a pattern."""
    return "".join(f"\\{c}" if c in HADOOP_GLOB_CHARS else c for c in uri)


_FILESYSTEMS: dict[tuple, pafs.FileSystem] = {}  # one client per process and setting
_CLIENTS: dict[tuple, object] = {}  # boto3 clients, for what pyarrow cannot do (conditional writes)


def split_uri(uri: str) -> tuple[str, str]:
    """(scheme, the path inside its filesystem): ("file", "/abs/dir") or ("s3a", "bucket/prefix")."""
    if is_s3(uri):
        scheme, rest = uri.split("://", 1)
        return scheme, rest.strip("/")
    if "://" in uri and not uri.startswith("file://"):
        raise UserError(
            f"{uri!r} is neither a local path nor an s3:// / s3a:// URI: the job reads and writes "
            "local folders (file://) and S3 prefixes."
        )
    path = (
        uri[len("file://") :] if uri.startswith("file://") else uri[len("file:") :] if uri.startswith("file:") else uri
    )
    return "file", str(Path(path).expanduser().absolute())


@dataclass(frozen=True)
class Store:
    root: str  # the folder inside the filesystem: /abs/path, or bucket/prefix
    scheme: str = "file"  # how paths under this store are spelled for users: file:/abs/path, s3a://bucket/key
    s3: tuple | None = None  # S3FileSystem options as sorted items (hashable, picklable, no secrets); None: local
    credentials: str = "default"  # the job's --s3-credentials mode, resolved where the filesystem is made

    @staticmethod
    def at(uri: str, s3: S3Settings) -> "Store":
        scheme, inner = split_uri(uri)
        if scheme == "file":
            return Store(inner)
        options = s3.arrow_options(inner.split("/")[0])
        return Store(inner, scheme, tuple(sorted(options.items())), s3.credentials)

    def __repr__(self) -> str:  # never the options: they may hold keys
        return f"Store({self.uri!r})"

    @property
    def is_local(self) -> bool:
        return self.s3 is None

    @property
    def uri(self) -> str:
        return self.uri_of(self.root)

    def uri_of(self, inner: str) -> str:
        """A path inside the filesystem as users and the output rows spell it."""
        return f"file:{inner}" if self.is_local else f"{self.scheme}://{inner}"

    def inner_of(self, uri: str) -> str:
        """uri_of, reversed."""
        return uri[len("file:") :] if self.is_local else uri.split("://", 1)[1]

    @property
    def filesystem(self) -> pafs.FileSystem:
        key = (self.s3, self.credentials, _static_identity() if self.credentials == "static" else None)
        if key not in _FILESYSTEMS:
            _FILESYSTEMS[key] = self._s3_filesystem() if self.s3 else pafs.LocalFileSystem()
        return _FILESYSTEMS[key]

    def _s3_filesystem(self) -> pafs.S3FileSystem:
        """One credential chain, the one the job's mode names, in this process: static keys from
        its environment (a Secret's, on Kubernetes); irsa the web identity token alone, never
        the node's instance role (the instance metadata service is off for the SDK); default
        the SDK's chain."""
        assert self.s3 is not None  # made for S3 stores only
        options = dict(self.s3)
        if self.credentials == "static":
            options.update(
                access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
                secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
            )
        elif self.credentials == "irsa":
            os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        return pafs.S3FileSystem(**options, retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS))

    def path(self, relative: str = "") -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def kind(self, relative: str = "") -> pafs.FileType:
        return self.filesystem.get_file_info(self.path(relative)).type

    def children(self, relative: str = "") -> dict[str, pafs.FileType]:
        """The entries directly under a folder, by name (empty when the folder does not exist)."""
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True)
        return {info.base_name: info.type for info in self.filesystem.get_file_info(selector)}

    @contextmanager
    def _committed(self, relative: str) -> Iterator[str]:
        """A hidden temporary path (a leading "_": Spark and pyarrow readers skip it) to write
        the file at; renamed to `relative` if the block ends without error, else deleted.
        (Writing in place would commit half a file: an S3 upload completes when it closes.)"""
        target = self.path(relative)
        folder, name = target.rsplit("/", 1)
        temp = f"{folder}/{temporary_name(name)}"
        if self.is_local:  # S3 has no folders: a key is enough (and no bucket probe, no marker objects)
            self.filesystem.create_dir(folder, recursive=True)
        try:
            yield temp
        except BaseException:
            try:
                self.filesystem.delete_file(temp)
            except (FileNotFoundError, OSError):
                pass  # the original error matters, not the clean-up's
            raise
        self.filesystem.move(temp, target)

    @contextmanager
    def writer(self, relative: str, schema: pa.Schema, digest: Any = None) -> Iterator[pq.ParquetWriter]:
        """A Parquet writer whose file appears, complete, only if the block ends without error;
        with `digest` (a hashlib object), every byte written also goes through it."""
        if digest is None:
            with self._committed(relative) as temp, pq.ParquetWriter(temp, schema, filesystem=self.filesystem) as out:
                yield out
            return
        with (
            self._committed(relative) as temp,
            self.filesystem.open_output_stream(temp) as stream,
            pq.ParquetWriter(pa.PythonFile(_Hashing(stream, digest), mode="w"), schema) as out,
        ):
            yield out

    def sha256(self, relative: str) -> str:
        """The SHA-256 of a file's content, read in 8 MiB pieces."""
        digest = hashlib.sha256()
        with self.filesystem.open_input_stream(self.path(relative)) as stream:
            while piece := stream.read(8 << 20):
                digest.update(piece)
        return digest.hexdigest()

    def write(self, relative: str, table: pa.Table) -> None:
        with self.writer(relative, table.schema) as writer:
            writer.write_table(table)

    def write_bytes(self, relative: str, data: bytes) -> None:
        """A file of bytes, committed like the Parquet files."""
        with self._committed(relative) as temp, self.filesystem.open_output_stream(temp) as stream:
            stream.write(data)

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode("utf-8"))

    def read_bytes(self, relative: str) -> bytes:
        with self.filesystem.open_input_stream(self.path(relative)) as stream:
            return stream.read()

    def read_many(self, uris: list[str], on_retry: Callable[[], None] | None = None) -> Iterator[bytes | OSError]:
        """The contents of files named as uri_of spells them, in order; a file that cannot be
        read gives its OSError instead (the caller records it and goes on). On S3, objects are
        fetched READ_AHEAD at a time on threads, so the requests' latency overlaps the work,
        and storage faults are not the file's: see _read_object (`on_retry` hears each retry)."""
        if self.is_local:
            for uri in uris:
                yield _read_local(self.inner_of(uri))
            return
        with ThreadPoolExecutor(READ_AHEAD) as pool:
            pending: deque[Future[bytes | OSError]] = deque()
            for uri in uris:
                pending.append(pool.submit(self._read_object, self.inner_of(uri), on_retry))
                if len(pending) >= 2 * READ_AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _read_object(self, inner: str, on_retry: Callable[[], None] | None = None) -> bytes | OSError:
        """An object's bytes, or the OSError of an object that cannot be read (gone since the
        listing). A transient fault is retried with backoff for storage_retry_s(); one that
        lasts longer, or a refusal of the store itself (access, bucket), raises a worker user
        error: the task fails (Spark retries it), then the run, in one sentence; an outage
        never becomes error rows."""
        deadline, pause = time.monotonic() + storage_retry_s(), 0.5
        while True:
            try:
                with self.filesystem.open_input_stream(inner) as stream:
                    return stream.read()
            except OSError as exc:
                text = str(exc)
                if is_transient(text) and time.monotonic() + pause < deadline:
                    if on_retry is not None:
                        on_retry()
                    time.sleep(pause * random.uniform(0.5, 1.0))  # jittered: tasks do not retry in step
                    pause = min(2 * pause, 8.0)
                    continue
                if is_transient(text):
                    first_line = text.splitlines()[0] if text else type(exc).__name__
                    raise worker_user_error(
                        f"Reading {self.uri_of(inner)!r} kept failing for {storage_retry_s():g} s ({first_line}): "
                        "the storage or the network is failing, not the image; nothing was published: rerun once "
                        "the S3 endpoint answers (check --s3-endpoint and the network).",
                        storage=True,
                    ) from None
                refusal = self._settings().explain(text, self.uri_of(inner))
                if refusal is not None and not isinstance(exc, FileNotFoundError):
                    raise worker_user_error(refusal, storage=True) from None
                return exc

    def _settings(self) -> S3Settings:
        """The S3Settings this store was made from, as far as its sentences need them."""
        options = dict(self.s3 or ())
        return S3Settings(endpoint=options.get("endpoint_override", ""), credentials=self.credentials)

    @contextmanager
    def parquet_file(self, relative: str) -> Iterator[pq.ParquetFile]:
        """A Parquet file of the store, open for reading (its schema, metadata, row groups)."""
        with self.filesystem.open_input_file(self.path(relative)) as handle:
            yield pq.ParquetFile(handle)

    def read_table(self, relative: str, columns: list[str] | None = None) -> pa.Table:
        """A whole Parquet file (these columns, or all)."""
        with self.parquet_file(relative) as parquet:
            return parquet.read(columns=columns)

    def batches(self, relative: str, rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The file's rows (these columns, or all) in batches of at most `rows` (memory stays bounded)."""
        with self.parquet_file(relative) as parquet:
            yield from parquet.iter_batches(batch_size=rows, columns=columns)

    def parquet_rows(self, relative: str) -> int:
        with self.parquet_file(relative) as parquet:
            return parquet.metadata.num_rows

    def create_exclusive(self, relative: str, data: bytes) -> bool:
        """Write a file only if none is there, atomically (locally O_EXCL; on S3 a conditional
        PUT, If-None-Match: *, which AWS S3, MinIO and moto honour); False if one was there."""
        if self.is_local:
            path = self.path(relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            return True
        from botocore.exceptions import ClientError

        bucket, _, key = self.path(relative).partition("/")
        try:
            self._s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise _as_os_error(exc) from None
        return True

    def _s3_client(self) -> Any:  # boto3 ships no types
        """A boto3 client with the store's endpoint, region, addressing, timeouts and credential
        mode: pyarrow's S3 filesystem cannot make conditional writes."""
        key = ("boto3", self.s3, self.credentials, _static_identity() if self.credentials == "static" else None)
        if key not in _CLIENTS:
            import boto3
            from botocore.config import Config

            options = dict(self.s3 or ())
            endpoint = (
                f"{options.get('scheme', 'https')}://{options['endpoint_override']}"
                if options.get("endpoint_override")
                else None
            )
            config = Config(
                connect_timeout=options.get("connect_timeout"),
                read_timeout=options.get("request_timeout"),
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                s3={
                    "addressing_style": "virtual" if options.get("force_virtual_addressing") or not endpoint else "path"
                },
            )
            static = {}
            if self.credentials == "static":
                static = {
                    "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
                    "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
                    "aws_session_token": os.environ.get("AWS_SESSION_TOKEN") or None,
                }
            elif self.credentials == "irsa":
                os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # the web identity token alone
            _CLIENTS[key] = boto3.client(
                "s3", endpoint_url=endpoint, region_name=options.get("region"), config=config, **static
            )
        return _CLIENTS[key]

    def file_list(self, relative: str) -> dict[str, tuple[int, int]]:
        """Every file under a folder, recursively: its path relative to the store's root ->
        (size in bytes, modification time in ns). Empty when the folder does not exist."""
        selector = pafs.FileSelector(self.path(relative), recursive=True, allow_not_found=True)
        prefix = len(self.root) + 1
        return {
            info.path[prefix:]: (info.size, info.mtime_ns or 0)
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File and not info.base_name.startswith(TEMPORARY_PREFIX)
        }

    def move_dir(self, relative: str, to: str) -> None:
        """A folder and everything in it renamed to `to` (which must not exist): one rename
        locally; on S3, each object copied then deleted."""
        if self.is_local:
            os.makedirs(os.path.dirname(self.path(to)), exist_ok=True)
            os.rename(self.path(relative), self.path(to))
            return
        files = self.file_list(relative)
        source, target = self.path(relative), self.path(to)

        def move(path: str) -> None:
            self.filesystem.move(f"{self.root}/{path}", target + f"{self.root}/{path}"[len(source) :])

        with ThreadPoolExecutor(READ_AHEAD) as pool:
            list(pool.map(move, files))

    def files(self, relative: str) -> list[str]:
        return sorted(name for name, kind in self.children(relative).items() if kind == pafs.FileType.File)

    def delete(self, relative: str) -> None:
        """A file or a folder with everything in it; nothing if it is not there."""
        kind = self.kind(relative)
        if kind == pafs.FileType.Directory:
            self.delete_dir(relative)
        elif kind == pafs.FileType.File and self.is_local:
            self.filesystem.delete_file(self.path(relative))
        elif kind == pafs.FileType.File:
            self._delete_key(self.path(relative))

    def delete_dir(self, relative: str) -> None:
        """A folder and everything in it. On S3, one DeleteObject per key (READ_AHEAD at a time):
        each is authorised for its own key, as the least-privilege policy grants deletes, where
        a multi-object delete is authorised against the bucket by some S3 servers (moto)."""
        folder = self.path(relative)
        if self.is_local:
            try:
                self.filesystem.delete_dir(folder)
            except FileNotFoundError:
                pass
            return
        found = self.filesystem.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
        keys = [info.path + ("/" if info.type == pafs.FileType.Directory else "") for info in found]
        with ThreadPoolExecutor(READ_AHEAD) as pool:
            list(pool.map(self._delete_key, [*keys, folder + "/"]))  # folders: their markers, where left

    def _delete_key(self, path: str) -> None:
        """Through boto3: pyarrow's delete_file writes a marker for the parent it leaves empty,
        which would leave the emptied folders behind as stray keys. A missing key is no error."""
        from botocore.exceptions import ClientError

        bucket, _, key = path.partition("/")
        try:
            self._s3_client().delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise _as_os_error(exc) from None


def _as_os_error(exc: Any) -> OSError:
    """A boto3 ClientError worded as pyarrow words its S3 errors, which the callers' error
    messages (storage_errors_as_user_errors) already understand."""
    return OSError(f"AWS Error {exc.response.get('Error', {}).get('Code')}: {exc}")


class _Hashing:
    """A writable file that hashes what it passes on (pyarrow writes Parquet through it)."""

    def __init__(self, stream: Any, digest: Any):
        self.stream, self.digest, self.closed = stream, digest, False

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.stream.write(data)
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.closed = True  # the stream is closed by its owner, once the Parquet footer is out


def _static_identity() -> tuple[str, str]:
    """Which static keys the environment holds (a client is made per key pair; no secret kept)."""
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    return os.environ.get("AWS_ACCESS_KEY_ID", ""), hashlib.sha256(secret.encode()).hexdigest()


def _read_local(path: str) -> bytes | OSError:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        return exc


TEMPORARY_PREFIX = "_tmp-"


def temporary_name(name: str) -> str:
    """Where a file is written before it is committed under `name`."""
    return f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}-{name}"


@contextmanager
def storage_errors_as_user_errors(uri: str, s3: S3Settings, doing: str | None = None):
    """Turn known storage failures while touching `uri` into UserErrors (S3Settings.explain).

    With `doing` (e.g. "list the input"), any other failure also becomes a UserError
    quoting the storage's own first line: use it where only reaching storage can fail.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        message = s3.explain(str(exc), uri)
        if message is None and doing:
            first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            message = f"Cannot {doing} {uri!r}: {first_line.strip()}"
        if message is None:
            raise
        raise StorageError(message) from None
