"""One definition of every job option.

`JobConfig`'s fields are the single source: the spark-submit entry point's argparse
parser, `fruitsctl run`'s options, config files (YAML/JSON) and the argument list that
cluster manifests pass to the job are all derived from them.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from fruits.backbones import BACKBONES
from fruits.errors import UserError


def option(default, help: str, *, choices: Iterable[str] | None = None, low=None, high=None):
    """A JobConfig field with what a user needs to know about it."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "low": low, "high": high}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class JobConfig:
    input: str | None = option(
        None,
        "Images to read: a folder, file:// or s3a:// path (recursive). The label is the parent "
        "folder's name; a <split>/<label>/<file> layout also records the split. Empty: a generated demo set.",
    )
    output: str | None = option(
        None, "Where to write features, model, errors and manifest (folder or s3a:// prefix). Empty: fruits-output/<run id>."
    )
    model: str = option("mobilenet_v2", "Pretrained CNN backbone.", choices=BACKBONES)
    weights: str = option(
        "imagenet", "'imagenet' (downloaded once by Keras; needs internet) or the path of a Keras weights file."
    )
    image_size: int = option(128, "Square input size the images are resized to (pixels).", low=32, high=1024)
    variance: float = option(
        0.95, "Keep the smallest number of PCA components whose cumulative explained variance reaches this.", low=0.01, high=1.0
    )
    k: int | None = option(None, "Keep exactly this many PCA components (instead of --variance).", low=1, high=100_000)
    fit_fraction: float = option(
        1.0, "Fit scaler and PCA on this random fraction of the images (all are transformed).", low=0.0001, high=1.0
    )
    batch_size: int = option(64, "Images per model.predict batch inside each Spark task.", low=1, high=4096)
    partitions: int | None = option(
        None, "Spark partitions to featurize in (default: Spark's split of the input files).", low=1, high=1_000_000
    )
    seed: int = option(42, "Seed for the fit sample.", low=0, high=2**31 - 1)
    overwrite: bool = option(False, "Replace an existing complete output (one with a manifest).")
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(JobConfig)}
DEFAULTS = JobConfig()


def flag(name: str) -> str:
    """The command-line spelling of a field: image_size -> --image-size."""
    return "--" + name.replace("_", "-")


def value_type(name: str) -> type:
    """The plain type of a field (int for `int | None`)."""
    hint = typing.get_type_hints(JobConfig)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _coerce(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    kind = value_type(name)
    try:
        if kind is bool:
            if isinstance(raw, str):
                lowered = raw.strip().lower()
                if lowered not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError
                return lowered in ("true", "yes", "1")
            return bool(raw)
        if kind is int and isinstance(raw, float) and not raw.is_integer():
            raise ValueError
        return kind(raw)
    except (TypeError, ValueError):
        raise UserError(f"{flag(name)} must be {kind.__name__}, got {raw!r}.") from None


def _check_range(name: str, value: Any) -> None:
    meta = FIELDS[name].metadata
    if value is None:
        return
    if meta["choices"] and value not in meta["choices"]:
        raise UserError(f"{flag(name)} must be one of {', '.join(meta['choices'])}; got {value!r}.")
    low, high = meta["low"], meta["high"]
    if low is not None and not (low <= value <= high):
        raise UserError(f"{flag(name)} must be between {low} and {high}; got {value}.")


def build_config(*layers: Mapping[str, Any]) -> JobConfig:
    """Merge option layers (defaults < config file < command line) into a checked JobConfig.

    Keys may use dashes or underscores; None values mean "not given" and are skipped.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, raw in layer.items():
            name = key.replace("-", "_")
            if name not in FIELDS:
                known = ", ".join(sorted(FIELDS))
                raise UserError(f"Unknown option {key!r}: the options are {known}.")
            if raw is not None:
                merged[name] = _coerce(name, raw)
    for name, value in merged.items():
        _check_range(name, value)
    if "k" in merged and "variance" in merged:
        raise UserError("Give either --variance or --k, not both.")
    weights = merged.get("weights", DEFAULTS.weights)
    if weights != "imagenet" and "://" not in weights and not Path(weights).is_file():
        raise UserError(
            f"Weights file {weights!r} does not exist: pass --weights imagenet or the path of a Keras weights file."
        )
    return JobConfig(**merged)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a YAML or JSON file (a mapping of option names to values)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Config file {str(path)!r} does not exist: check the --config path.")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"Config file {str(path)!r} is not valid YAML/JSON ({exc}); fix its syntax.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"Config file {str(path)!r} must hold a mapping of option names to values.")
    return data


def to_argv(config: JobConfig) -> list[str]:
    """The job's command-line arguments for `config` (what a cluster manifest passes).

    Only options that differ from the defaults are written, so manifests stay short and a
    changed default reaches every deployment.
    """
    argv: list[str] = []
    for name in FIELDS:
        value = getattr(config, name)
        if value == getattr(DEFAULTS, name):
            continue
        if value_type(name) is bool:
            argv.append(flag(name) if value else "--no-" + flag(name)[2:])
        else:
            argv += [flag(name), str(value)]
    return argv
