"""One definition of every job option.

`JobConfig`'s fields are the single source: the spark-submit entry point's argparse
parser, `fruitsctl run`'s options, config files (YAML/JSON) and the argument list that
cluster manifests pass to the job are all derived from them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fruits.settings import options
from fruits.settings.backbones import BACKBONES
from fruits.settings.errors import UserError
from fruits.settings.options import fields_of, flag, load_config_file, merge_layers, option, to_argv  # noqa: F401

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # the files the job reads (and `upload` uploads), any letter case
LATEST = "latest:"  # --incremental-from latest:PREFIX: the newest finished run under PREFIX
KEPT_LOGS = "_logs"  # in an output: the driver's log of each attempt (read by fruitsctl logs on the base install)


def new_run_id() -> str:
    """A new run id: UTC date and time, then 6 random hex digits (sortable, unique enough)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass(frozen=True)
class JobConfig:
    input: str | None = option(
        None,
        "Images to read: a folder, file:// or s3a:// path (recursive). The label is the parent "
        "folder's name; a <split>/<label>/<file> layout also records the split. Empty: a generated demo set.",
    )
    output: str | None = option(
        None,
        "Where to write features, model, errors and manifest (folder or s3a:// prefix); {run_id} in it "
        "is replaced by the run id. Empty: fruits-output/<run id>.",
    )
    backbone: str = option("mobilenet_v2", "Pretrained CNN backbone.", choices=BACKBONES)
    weights: str = option(
        "imagenet", "'imagenet' (downloaded once by Keras; needs internet) or the path of a Keras weights file."
    )
    runtime: str = option(
        "tflite",
        "Inference runtime: tflite (TensorFlow Lite with XNNPACK, ~3x faster on CPU, same features "
        "to 1e-4) or tf (the Keras model on TensorFlow).",
        choices=("tflite", "tf"),
    )
    precision: str = option(
        "int8",
        "The tflite backbone's arithmetic: int8 (weights and activations quantized, calibrated on a fixed "
        "set of photos; ~1.7x faster, same accuracy) or float32. --runtime tf is always float32.",
        choices=("int8", "float32"),
    )
    image_size: int = option(96, "Square input size the images are resized to (pixels).", low=32, high=1024)
    variance: float = option(
        0.95,
        "Keep the smallest number of PCA components whose cumulative explained variance reaches this.",
        low=0.01,
        high=1.0,
    )
    k: int | None = option(None, "Keep exactly this many PCA components (instead of --variance).", low=1, high=100_000)
    classifier: str = option(
        "logistic",
        "The classifier head fitted on the pca vectors and saved with the model: logistic (multinomial "
        "logistic regression in Spark ML, its regularisation chosen on held-out frames: the best measured "
        "top-1, 0.959 on held-out Fruits-360 frames against 0.948 for 1-NN and 0.875 for the nearest "
        "centroid) or none (no fit: saves its minutes on a large run).",
        choices=("logistic", "none"),
    )
    fit_fraction: float = option(
        1.0, "Fit scaler and PCA on this random fraction of the images (all are transformed).", low=0.0001, high=1.0
    )
    batch_size: int = option(64, "Images per backbone batch inside each Spark task.", low=1, high=4096)
    partitions: int | None = option(
        None,
        "Featurize tasks; the file scan packs the images into them (default: whole waves "
        "across the cores, a few thousand images a task at most).",
        low=1,
        high=1_000_000,
    )
    seed: int = option(42, "Seed for the fit sample.", low=0, high=2**31 - 1)
    overwrite: bool = option(False, "Replace an existing complete output (one with a manifest).")
    run_id: str | None = option(None, "Run id recorded in the manifest (default: a new timestamped id).")
    incremental_from: str | None = option(
        None,
        "A finished run's output (folder or s3a:// prefix), or latest:PREFIX for the newest finished run "
        "under PREFIX: images unchanged since that run (same path, size and modification time) reuse its "
        "features instead of going through the CNN. latest: with no finished run yet makes a full run.",
    )
    reuse_model: bool = option(
        False,
        "With --incremental-from: keep the previous run's scaler and PCA and only transform (default: "
        "refit them on all rows).",
    )
    apply_model: str | None = option(
        None,
        "A finished run's output whose backbone settings, scaler and PCA are applied to the input, "
        "without fitting (what `fruitsctl transform --model RUN` runs); --k and --variance do not apply.",
    )
    s3_endpoint: str | None = option(
        None, "S3 endpoint URL; empty: AWS, or $AWS_ENDPOINT_URL when set. An http:// URL turns TLS off."
    )
    s3_region: str | None = option(None, "S3 region; empty: $AWS_REGION or $AWS_DEFAULT_REGION.")
    s3_path_style: bool = option(False, "Path-style S3 requests (MinIO and other local S3 servers).")
    s3_tls: bool = option(True, "Use TLS to the S3 endpoint (an http:// endpoint turns it off).")
    s3_credentials: str = option(
        "default",
        "Where S3 credentials come from: irsa (the pod's web identity token), static "
        "($AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY), default (the AWS default chain).",
        choices=("irsa", "static", "default"),
    )
    metrics_url: str | None = option(
        None,
        "Prometheus Pushgateway URL (e.g. http://pushgateway.monitoring:9091): every run pushes its metrics "
        "there when it ends, finished or failed. A Pushgateway that is down costs one warning, never the run.",
    )
    metrics_job: str | None = option(
        None,
        "The job key the metrics are grouped by, with the output prefix (default: the application's name "
        "without a scheduled run's suffix on Kubernetes, else 'fruits').",
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS: Mapping[str, dataclasses.Field] = fields_of(JobConfig)
DEFAULTS = JobConfig()


def build_config(*layers: Mapping[str, Any], other_names: Iterable[str] = ()) -> JobConfig:
    """Merge option layers (defaults < config file < command line) into a checked JobConfig."""
    merged = merge_layers(JobConfig, layers, other_names)
    if "k" in merged and "variance" in merged:
        raise UserError("Give either --variance or --k, not both.")
    if merged.get("reuse_model") and not merged.get("incremental_from"):
        raise UserError(
            "--reuse-model keeps the model of the run given to --incremental-from: give "
            "--incremental-from too, or use --apply-model RUN to apply a run's model to new images."
        )
    if merged.get("apply_model") and merged.get("incremental_from"):
        raise UserError(
            "Give either --apply-model or --incremental-from, not both: --incremental-from RUN "
            "--reuse-model reuses both a run's features and its model."
        )
    if merged.get("runtime") == "tf":
        if merged.get("precision") == "int8":
            raise UserError(
                "--precision int8 runs on LiteRT: use --runtime tflite, or --precision float32 with --runtime tf."
            )
        merged["precision"] = "float32"  # what the Keras model computes in
    backbone = BACKBONES[merged.get("backbone", DEFAULTS.backbone)]
    if merged.get("k") is not None and merged["k"] > backbone.feature_dim:
        raise UserError(
            f"--k {merged['k']} is more than the {backbone.feature_dim} features of {backbone.name}: "
            f"give --k {backbone.feature_dim} or less, or choose k by --variance."
        )
    url = merged.get("metrics_url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise UserError(f"--metrics-url {url!r} is not an http:// or https:// URL: give the Pushgateway's URL.")
    weights = merged.get("weights", DEFAULTS.weights)
    if weights != "imagenet" and "://" not in weights and not Path(weights).is_file():
        raise UserError(
            f"Weights file {weights!r} does not exist: pass --weights imagenet or the path of a Keras weights file."
        )
    return JobConfig(**merged)


def value_type(name: str) -> type:
    return options.value_type(JobConfig, name)
