"""Write: the manifest, one typed record of a finished run, written last (its presence is
what says the run finished). `Manifest.to_dict()` is the `fruits-run/2` JSON document;
`upgraded` reads the older `fruits-run/1` layout (the backbone then recorded as `model`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

FORMAT = "fruits-run/2"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Counts:
    read: int  # every file the run accounted for: images listed plus problems found while listing
    ok: int  # rows in features/
    failed: int  # rows in errors/
    skipped: dict[str, int]  # by rule: hidden entries, files that are not images
    read_retries: int = 0  # reads retried after a transient storage fault (none became an error row)


@dataclass(frozen=True)
class BackboneRecord:
    name: str
    weights: str
    image_size: int
    feature_dim: int
    precision: str  # of the converted model (float32 for --runtime tf)
    model_sha256: str | None  # the converted TFLite model's content hash (None for --runtime tf)


@dataclass(frozen=True)
class PcaRecord:
    k: int
    k_requested: int | None
    variance_target: float | None
    variance_kept: float
    fit_rows: int
    explained_variance: list[float]
    fitted_by: dict[str, str] | None  # the run whose model was applied (--apply-model, --reuse-model)


@dataclass(frozen=True)
class ClassifierRecord:
    """The classifier head saved with the model (stages 2 and 3 of model/), and how it was chosen."""

    kind: str  # logistic: multinomial logistic regression on the pca vectors
    labels: int
    label_names: list[str]  # index i of the head's prediction is label_names[i] (sorted)
    reg_param: float  # the one chosen: the best held-out top-1 of the grid
    held_out_top1_by_reg_param: dict[str, float]  # the grid: each regParam fitted on the train part
    held_out_top1: float  # of the saved model (fitted on the train part only)
    split: str  # how the held-out rows were chosen (fruits.fit.held_out)
    train_rows: int
    test_rows: int
    fit_s: float  # the grid's fits and scores, in the run that fitted it
    fitted_by: dict[str, str] | None = None  # the run whose head was kept (--apply-model, --reuse-model)


@dataclass(frozen=True)
class FeaturizeRecord:
    partitions: int
    reused_partitions: int  # finished by an earlier attempt of this run (a retried driver)
    planned_cores: int
    stats_merge_tasks: int
    stats_bytes_to_driver: int
    retried_tasks: int = 0  # task attempts lost (an executor gone, a Python worker killed) and run again


@dataclass(frozen=True)
class Manifest:
    run_id: str
    started_at: str
    finished_at: str
    input: str
    output: str
    counts: Counts
    labels: dict[str, int]
    splits: dict[str, int]
    backbone: BackboneRecord
    pca: PcaRecord
    warnings: list[str]
    timings_s: dict[str, float]
    incremental: dict[str, Any] | None
    featurize: FeaturizeRecord
    cost: dict[str, float]
    files: dict[str, str]
    # every result file (features/, errors/, model/) as published: size, modification time, SHA-256,
    # which readers check before they trust the run (fruits.runs.finished_run.verify)
    contents: dict[str, dict[str, Any]]
    config: dict[str, Any]
    versions: dict[str, str]
    metrics: dict[str, Any] | None = None  # the push to --metrics-url: where, and whether it worked
    log: str | None = None  # the driver's log of this attempt, kept under _logs/ after the manifest
    classifier: ClassifierRecord | None = None  # None: --classifier none, or a run made before heads
    format: str = field(default=FORMAT)

    def to_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        return {"format": document.pop("format"), **document}


def upgraded(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as `fruits-run/2` spells it, whatever version wrote it. Runs from before
    --precision existed were float32, their models unhashed."""
    document = dict(manifest)
    if manifest.get("format") == "fruits-run/1":
        document = {key: value for key, value in manifest.items() if key != "model"}
        document["backbone"] = manifest.get("model")
        if isinstance(manifest.get("config"), dict):
            config = {key: value for key, value in manifest["config"].items() if key != "model"}
            document["config"] = {"backbone": manifest["config"].get("model"), **config}
    if isinstance(document.get("config"), dict) and "precision" not in document["config"]:
        document["config"] = {**document["config"], "precision": "float32"}
    if isinstance(document.get("backbone"), dict) and "precision" not in document["backbone"]:
        document["backbone"] = {**document["backbone"], "precision": "float32", "model_sha256": None}
    return document
