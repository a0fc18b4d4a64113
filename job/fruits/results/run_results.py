"""A finished run's results (its manifest, feature rows and error rows) read without Spark,
from a local folder or S3, for report, evaluate and export.

Only a run with a manifest is finished; anything else is refused with the reason.
"""

import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fruits.io.output import ERRORS, FEATURES, IN_PROGRESS, MANIFEST
from fruits.io.s3_settings import S3Settings, is_s3
from fruits.io.storage import Store
from fruits.runs.finished_run import FinishedRun, verify
from fruits.settings.config import DEFAULTS, JobConfig
from fruits.settings.errors import UserError
from fruits.write.manifest import upgraded


@dataclass
class RunResults:
    run: FinishedRun
    features: pa.Table  # path, label, split, pca (features left out: large and not needed)
    errors: pa.Table
    s3: S3Settings  # reach the run's output and its input images
    _buckets: dict = field(default_factory=dict, repr=False)  # bucket -> its store (one region lookup)

    @property
    def uri(self) -> str:
        return self.run.uri

    @property
    def manifest(self) -> dict:
        return self.run.manifest

    def read_image(self, path: str) -> bytes | None:
        """Bytes of an input image named in the results, if it can still be reached."""
        try:
            fs, inner = self._locate(path)
            with fs.open_input_file(inner) as handle:
                return handle.read()
        except (OSError, pa.ArrowException):
            return None

    def _locate(self, path: str) -> tuple[pafs.FileSystem, str]:
        """An input image's filesystem and path in it; S3 stores are made once per bucket
        (making one may look up the bucket's region)."""
        if not is_s3(path):
            local = Store.at(path, self.s3)
            return local.filesystem, local.root
        bucket, _, key = path.split("://", 1)[1].partition("/")
        if bucket not in self._buckets:
            self._buckets[bucket] = Store.at(f"s3://{bucket}", self.s3)
        return self._buckets[bucket].filesystem, self._buckets[bucket].path(key)


def open_run(uri: str, config: JobConfig = DEFAULTS, columns=("path", "label", "split", "pca")) -> RunResults:
    """A finished run's results, read with the same S3 settings as the job's (`config`)."""
    s3 = S3Settings.of(config)
    store = Store.at(uri, s3)
    fs, root = store.filesystem, store.root
    try:
        info = fs.get_file_info([f"{root}/{MANIFEST}", f"{root}/{IN_PROGRESS}", root])
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"Cannot reach {uri!r}: {str(exc).splitlines()[0]}") from None
    manifest_info, marker_info, root_info = info
    if manifest_info.type == pafs.FileType.NotFound:
        if root_info.type == pafs.FileType.NotFound:
            raise UserError(f"No run output at {uri!r}: check the path (a folder or s3:// prefix given as --output).")
        if marker_info.type != pafs.FileType.NotFound:
            raise UserError(
                f"{uri!r} holds a run that has not finished (no manifest.json, still marked in "
                "progress): wait for it, or rerun the job."
            )
        raise UserError(f"{uri!r} has no manifest.json: it is not a finished run (incomplete or not a run output).")
    run = FinishedRun(uri.rstrip("/"), store, upgraded(json.loads(store.read_bytes(MANIFEST))))
    verify(run, "The run at")  # before its tables are read: they must be the ones it wrote
    features = pq.read_table(f"{root}/{FEATURES}", filesystem=fs, columns=list(columns))
    errors = pq.read_table(f"{root}/{ERRORS}", filesystem=fs)
    return RunResults(run, features, errors, s3)
