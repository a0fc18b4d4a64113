"""fruitsctl's entry point: the Typer app, and the one place errors become exit codes."""

import sys

import typer

from fruits.cli.console import print_error
from fruits.cli.options import with_job_options
from fruits.cli.run import run
from fruits.errors import EXIT_USER_ERROR, UserError

app = typer.Typer(
    name="fruitsctl",
    help="Fruits! feature pipeline: run it locally or on Kubernetes, and look at its results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run")(with_job_options(run))


@app.callback()
def _root() -> None:
    """Fruits! feature pipeline: run it locally or on Kubernetes, and look at its results."""


def main() -> None:
    try:
        app(standalone_mode=True)
    except UserError as exc:
        print_error(str(exc))
        sys.exit(EXIT_USER_ERROR)
