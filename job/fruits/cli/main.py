"""fruitsctl's entry point: the Typer app, and the one place errors become exit codes."""

import os
import sys
from functools import partial

import typer

from fruits.cli import cluster
from fruits.cli.console import print_error
from fruits.cli.help import PanelledCommand, PanelledGroup
from fruits.cli.options import with_settings
from fruits.cli.results import evaluate_command, export_command, report
from fruits.cli.run import NOT_FOR_TRANSFORM, demo_data, run, transform
from fruits.cli.upload import upload
from fruits.cluster.cluster_config import ClusterConfig
from fruits.settings.errors import EXIT_USER_ERROR, UserError


class FruitsGroup(PanelledGroup):
    """Every command's UserError becomes one red sentence and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_USER_ERROR) from None


app = typer.Typer(
    name="fruitsctl",
    cls=FruitsGroup,
    help="Fruits! feature pipeline: run it locally or on Kubernetes, and look at its results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # fruits.cli.help formats the pages
)
register = partial(app.command, cls=PanelledCommand)
register("run")(with_settings(run))
register("transform")(with_settings(transform, job_excluded=NOT_FOR_TRANSFORM))
register("upload")(upload)
register("demo-data")(demo_data)
register("report")(with_settings(report, job_prefix="s3_"))
register("evaluate")(with_settings(evaluate_command, job_prefix="s3_"))
register("export")(with_settings(export_command, job_prefix="s3_"))
register("render", rich_help_panel="Cluster")(with_settings(cluster.render, ClusterConfig))
register("submit", rich_help_panel="Cluster")(with_settings(cluster.submit, ClusterConfig))
for name, function in (
    ("wait", cluster.wait),
    ("status", cluster.status),
    ("list", cluster.list_apps),
    ("logs", cluster.logs),
    ("events", cluster.events),
    ("delete", cluster.delete),
    ("ui", cluster.ui),
):
    register(name, rich_help_panel="Cluster")(function)


@app.callback()
def _root() -> None:
    """Fruits! feature pipeline: run it locally or on Kubernetes, and look at its results."""


def main() -> None:
    try:
        app()
    except SystemExit as done:
        if backbone_still_preparing():
            # Interpreter shutdown would end the preparing thread inside TensorFlow's C++ code,
            # which aborts the process (SIGABRT) instead of exiting with our code: leave at once.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code if isinstance(done.code, int) else 1)
        raise


def backbone_still_preparing() -> bool:
    """A run failed fast (a refused output, a bad --input) while its backbone was still being
    prepared in the background; the module is only loaded by the commands that run the job."""
    module = sys.modules.get("fruits.featurize.backbone_model")
    return module is not None and module.still_preparing()
