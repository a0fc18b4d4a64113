"""Typer options generated from JobConfig's fields, so the CLI never restates an option."""

import inspect
from typing import Annotated, Any, Callable, Optional

import typer

from fruits.config import FIELDS, build_config, flag, load_config_file, value_type


def _parameter(name: str) -> inspect.Parameter:
    meta, default = FIELDS[name].metadata, FIELDS[name].default
    kind = value_type(name)
    help_text = meta["help"]
    if meta["choices"]:
        help_text += f" One of: {', '.join(meta['choices'])}."
    declaration = f"{flag(name)}/--no-{flag(name)[2:]}" if kind is bool else flag(name)
    shown = "none" if default is None else str(default)
    option = typer.Option(declaration, help=help_text, show_default=shown, rich_help_panel="Job options")
    # Every option defaults to None ("not given") so that a config file can fill it.
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


CONFIG_PARAMETER = inspect.Parameter(
    "config_file", inspect.Parameter.KEYWORD_ONLY, default=None,
    annotation=Annotated[Optional[str], typer.Option(
        "--config", help="YAML/JSON file of job options (command-line options override it).",
        rich_help_panel="Job options")],
)


def with_job_options(command: Callable) -> Callable:
    """Give `command(config, **own)` every job option plus --config; it receives a JobConfig.

    The wrapped command's own keyword parameters stay as they are.
    """
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "config"]

    def wrapper(**values: Any):
        config_file = values.pop("config_file")
        given = {name: values.pop(name) for name in FIELDS}
        layers = [load_config_file(config_file)] if config_file else []
        return command(config=build_config(*layers, given), **values)

    wrapper.__signature__ = inspect.Signature([*own, CONFIG_PARAMETER, *(_parameter(n) for n in FIELDS)])
    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    return wrapper
