"""fruitsctl's entry point: the Typer app, and the one place errors become exit codes."""

import typer
from typer.core import TyperGroup

from fruits.cli.console import print_error
from fruits.cli import cluster
from fruits.cli.options import with_settings
from fruits.cluster.settings import ClusterConfig
from fruits.cli.results import evaluate_command, export_command, report
from fruits.cli.run import NOT_FOR_TRANSFORM, demo_data, run, transform
from fruits.cli.upload import upload
from fruits.settings.errors import EXIT_USER_ERROR, UserError


class FruitsGroup(TyperGroup):
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
)
app.command("run")(with_settings(run))
app.command("transform")(with_settings(transform, job_excluded=NOT_FOR_TRANSFORM))
app.command("upload")(upload)
app.command("demo-data")(demo_data)
app.command("report")(with_settings(report, job_prefix="s3_"))
app.command("evaluate")(with_settings(evaluate_command, job_prefix="s3_"))
app.command("export")(with_settings(export_command, job_prefix="s3_"))
app.command("render", rich_help_panel="Cluster")(with_settings(cluster.render, ClusterConfig))
app.command("submit", rich_help_panel="Cluster")(with_settings(cluster.submit, ClusterConfig))
for command, function in (("wait", cluster.wait), ("status", cluster.status), ("list", cluster.list_apps),
                          ("logs", cluster.logs),
                          ("events", cluster.events), ("delete", cluster.delete), ("ui", cluster.ui)):
    app.command(command, rich_help_panel="Cluster")(function)


@app.callback()
def _root() -> None:
    """Fruits! feature pipeline: run it locally or on Kubernetes, and look at its results."""


def main() -> None:
    app()
