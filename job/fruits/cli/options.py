"""Typer options generated from the settings dataclasses, so the CLI never restates an option."""

import inspect
from collections.abc import Callable
from typing import Annotated, Any, cast

import typer

from fruits.settings import options
from fruits.settings.config import JobConfig, build_config

PANELS = {"JobConfig": "Job options", "ClusterConfig": "Cluster options"}


def _parameter(cls, name: str) -> inspect.Parameter:
    field = options.fields_of(cls)[name]
    meta, kind = field.metadata, options.value_type(cls, name)
    help_text = meta["help"] + (f" One of: {', '.join(meta['choices'])}." if meta["choices"] else "")
    flag = options.flag(name)
    default = (
        field.default
        if field.default is not options.dataclasses.MISSING
        else cast(Callable[[], Any], field.default_factory)()  # set when default is not
    )
    panel = PANELS[cls.__name__]
    annotation: Any  # a typing form built at run time, for typer
    if kind is dict:  # repeatable KEY=VALUE
        option = typer.Option(
            flag, *meta["aliases"], metavar="KEY=VALUE", help=help_text + " Repeatable.", rich_help_panel=panel
        )
        annotation = Annotated[list[str] | None, option]
    else:
        declaration = f"{flag}/--no-{flag[2:]}" if kind is bool else flag
        option = typer.Option(
            declaration,
            *meta["aliases"],
            help=help_text,
            show_default="none" if default is None else str(default),
            rich_help_panel=panel,
        )
        annotation = Annotated[kind | None, option]
    # Every option defaults to None ("not given") so that a config file can fill it.
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


CONFIG_PARAMETER = inspect.Parameter(
    "config_file",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        str | None,
        typer.Option(
            "--config",
            help="YAML/JSON file of options (command-line options override it).",
            rich_help_panel="Job options",
        ),
    ],
)


def with_settings(
    command: Callable, cluster_class=None, job_prefix: str = "", job_excluded: tuple[str, ...] = ()
) -> Callable:
    """Give `command(config=JobConfig, [cluster=ClusterConfig,] **own)` every option plus --config
    (only the job options named `job_prefix...` where given, e.g. "s3_", and not those in
    `job_excluded`).

    The wrapped command's own keyword parameters stay as they are.
    """
    classes = [JobConfig] + ([cluster_class] if cluster_class else [])
    names = {
        cls: [
            n
            for n in options.fields_of(cls)
            if cls is not JobConfig or (n.startswith(job_prefix) and n not in job_excluded)
        ]
        for cls in classes
    }
    own = [p for p in inspect.signature(command).parameters.values() if p.name not in ("config", "cluster")]

    def wrapper(**values: Any):
        config_file = values.pop("config_file")
        file_layer = options.load_config_file(config_file) if config_file else {}
        given = {cls: {n: values.pop(n) for n in names[cls]} for cls in classes}
        settings = {"config": build_config(file_layer, given[JobConfig], other_names=names.get(cluster_class, ()))}
        if cluster_class:
            merged = options.merge_layers(cluster_class, [file_layer, given[cluster_class]], names[JobConfig])
            settings["cluster"] = cluster_class(**merged)
        return command(**settings, **values)

    parameters = [*own, CONFIG_PARAMETER, *(_parameter(cls, n) for cls in classes for n in names[cls])]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # read by typer/click via inspect
    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    return wrapper
