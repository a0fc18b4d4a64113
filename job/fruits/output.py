"""The output folder of a run, and the rule that only a manifest makes it complete.

Layout under OUTPUT (a folder or an s3a:// prefix):
    features/        Parquet: path, label, split, features, pca (part-NNNNN.parquet, one per task)
    errors/          Parquet: path, label, split, error (files that could not be decoded)
    _staging/        features before the PCA is fitted (removed before the manifest)
    model/           Spark ML PipelineModel (StandardScaler + PCA)
    manifest.json    written last: its presence is what says the run finished
    _RUN_IN_PROGRESS marker present while a run writes (removed after the manifest)
"""

import json

import pyarrow as pa
from pyspark.sql import SparkSession

from fruits.errors import UserError
from fruits.storage import HadoopFS

MANIFEST = "manifest.json"
IN_PROGRESS = "_RUN_IN_PROGRESS"
FEATURES, ERRORS, MODEL, STAGED = "features", "errors", "model", "_staging"

_DESCRIBED = [("path", pa.string()), ("label", pa.string()), ("split", pa.string())]
STAGED_SCHEMA = pa.schema([*_DESCRIBED, ("features", pa.list_(pa.float32()))])
FEATURES_SCHEMA = pa.schema([*_DESCRIBED, ("features", pa.list_(pa.float32())), ("pca", pa.list_(pa.float32()))])
ERROR_SCHEMA = pa.schema([*_DESCRIBED, ("error", pa.string())])


def part_file(partition: int) -> str:
    """The one file name of a Spark partition's rows: a retried task replaces its own file."""
    return f"part-{partition:05d}.parquet"


class RunOutput:
    def __init__(self, spark: SparkSession, uri: str):
        self.uri = uri.rstrip("/")
        self.fs = HadoopFS(spark, self.uri)

    def child(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def claim(self, run_id: str, overwrite: bool) -> None:
        """Make the output ours for this run, refusing to replace results the user did not give up.

        A finished run (manifest present) is replaced only with overwrite. A run that died
        (in-progress marker, no manifest) is replaced, so a retried job converges on the
        same final output. A folder of someone else's files is replaced only with overwrite.
        """
        self.created = not self.fs.exists()
        if not self.created:
            if not self.fs.is_dir():
                raise UserError(f"Output {self.uri!r} is a file: give a folder path for --output.")
            children = set(self.fs.children())
            if MANIFEST in children and not overwrite:
                raise UserError(
                    f"Output {self.uri!r} already holds a finished run: pass --overwrite to replace it, "
                    "or choose another --output."
                )
            if children and not children & {MANIFEST, IN_PROGRESS} and not overwrite:
                raise UserError(
                    f"Output {self.uri!r} is not empty and is not a Fruits run: choose a new folder "
                    "for --output (or pass --overwrite to replace its contents)."
                )
            if MANIFEST in children:  # first, so no reader takes the old results for the new
                self.fs.delete(MANIFEST)
            for name in children - {MANIFEST}:
                self.fs.delete(name)
        self.fs.write_text(IN_PROGRESS, json.dumps({"run_id": run_id}))

    def abandon(self) -> None:
        """Remove an output this run created but wrote nothing useful into."""
        if self.created:
            self.fs.delete()

    def complete(self, manifest: dict) -> None:
        """Write the manifest (the last file of a run) and drop the in-progress marker."""
        self.fs.write_text(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        self.fs.delete(IN_PROGRESS)
