"""Typed option dataclasses: one field definition serves the CLI, config files and argv.

A settings class (JobConfig, ClusterConfig) declares each option once with `option()`;
the functions here convert and check values from any layer (command line, YAML/JSON
file, chart values) and write them back as command-line arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from fruits.settings.errors import UserError


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] | None = None,
    low: float | None = None,
    high: float | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A settings field with what a user needs to know about it (and other flags it answers to)."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "low": low, "high": high, "aliases": aliases}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@functools.cache
def fields_of(cls: type) -> Mapping[str, dataclasses.Field[Any]]:
    return types.MappingProxyType({f.name: f for f in dataclasses.fields(cls)})  # shared: read-only


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # evaluates every annotation of the class: once per class


def flag(name: str) -> str:
    """The command-line spelling of a field: image_size -> --image-size."""
    return "--" + name.replace("_", "-")


def value_type(cls: type, name: str) -> type:
    """The plain type of a field (int for `int | None`, dict for `dict[str, str]`)."""
    hint = _type_hints(cls)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def parse_pairs(name: str, raw: Any) -> dict[str, str]:
    """KEY=VALUE items (or a mapping) as a dict; `name` is the option, for the error."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    pairs = {}
    for item in [raw] if isinstance(raw, str) else raw:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag(name)} takes KEY=VALUE, got {item!r}.")
        pairs[key.strip()] = value
    return pairs


def coerce(cls: type, name: str, raw: Any) -> Any:
    kind = value_type(cls, name)
    try:
        if kind is dict:
            return parse_pairs(name, raw)
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


def check_range(cls: type, name: str, value: Any) -> None:
    meta = fields_of(cls)[name].metadata
    if meta["choices"] and value not in meta["choices"]:
        raise UserError(f"{flag(name)} must be one of {', '.join(meta['choices'])}; got {value!r}.")
    low, high = meta["low"], meta["high"]
    if low is not None and not (low <= value <= high):
        raise UserError(f"{flag(name)} must be between {low} and {high}; got {value}.")


def merge_layers(cls: type, layers: Iterable[Mapping[str, Any]], other_names: Iterable[str] = ()) -> dict[str, Any]:
    """Checked values of `cls`'s fields from layers (later wins); None means "not given".

    Keys may use dashes or underscores. Keys in `other_names` belong to another settings
    class sharing the layer (a config file holds job and cluster options) and are skipped.
    """
    known, others = fields_of(cls), set(other_names)
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, raw in layer.items():
            name = key.replace("-", "_")
            if name in others:
                continue
            if name not in known:
                raise UserError(f"Unknown option {key!r}: the options are {', '.join(sorted(set(known) | others))}.")
            if raw is not None:
                merged[name] = coerce(cls, name, raw)
    for name, value in merged.items():
        check_range(cls, name, value)
    return merged


def argument_text(value: Any) -> str:
    """A value as an argument: numbers as Helm's templates print them (integral floats
    without a decimal point), so the chart and the CLI write identical argument lists."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def arguments_for(values: Mapping[str, Any]) -> list[str]:
    """Command-line arguments for option values by field name, in the given order: a bool as
    --name or --no-name, a dict as one --name key=value per item, None left out."""
    argv: list[str] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag(name) if value else "--no-" + flag(name)[2:])
        elif isinstance(value, dict):
            for key, item in value.items():
                argv += [flag(name), f"{key}={item}"]
        else:
            argv += [flag(name), argument_text(value)]
    return argv


def to_argv(settings: object) -> list[str]:
    """Command-line arguments for the options that differ from their defaults."""
    cls: type = type(settings)
    defaults = cls()
    return arguments_for(
        {name: getattr(settings, name) for name in fields_of(cls) if getattr(settings, name) != getattr(defaults, name)}
    )


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a YAML or JSON file (a mapping of option names to values)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Config file {str(path)!r} does not exist: check the --config path.")
    import yaml  # only for config files: fruitsctl starts without it

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
