"""All of fruitsctl's Rich output: one console, summaries and error lines."""

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=False, highlight=False)
error_console = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    error_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)


def print_note(message: str) -> None:
    error_console.print(f"[dim]{message}[/]", soft_wrap=True)


def run_summary(manifest: dict) -> Table:
    counts, pca = manifest["counts"], manifest["pca"]
    table = Table(title="Run complete", show_header=False, title_style="bold green")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("images read", str(counts["read"]))
    table.add_row("featurized", str(counts["ok"]))
    table.add_row("errors", f"[red]{counts['failed']}[/]" if counts["failed"] else "0")
    table.add_row("labels", str(len(manifest["labels"])))
    table.add_row("model", f"{manifest['model']['name']} @ {manifest['model']['image_size']}px "
                           f"({manifest['model']['feature_dim']}-d)")
    table.add_row("PCA k", f"{pca['k']} (variance kept {pca['variance_kept']:.1%})")
    table.add_row("wall time", f"{manifest['timings_s']['total']:.1f} s")
    table.add_row("cost", f"{manifest['cost']['core_seconds_per_1000_images']} core-s / 1000 images")
    table.add_row("output", manifest["output"])
    return table


@contextmanager
def upload_progress():
    columns = (TextColumn("[bold]upload"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        yield progress, progress.add_task("upload", total=None)


def upload_summary(report, destination: str) -> Table:
    table = Table(title=f"Upload to {destination}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("uploaded", str(len(report.uploaded)))
    table.add_row("skipped (already there)", str(len(report.skipped)))
    table.add_row("failed", f"[red]{len(report.failed)}[/]" if report.failed else "0")
    if report.not_images:
        examples = ", ".join(report.not_images[:3])
        table.add_row("not images, left out", f"{len(report.not_images)} (e.g. {examples}; "
                                              "--include-non-images uploads them)")
    for key, reason in report.failed[:10]:
        table.add_row(f"[red]{key}[/]", reason)
    return table


def report_summary(manifest: dict, evaluation: dict | None) -> Table:
    table = run_summary(manifest)
    table.title = f"Run {manifest['run_id']}"
    if evaluation:
        table.add_row("1-NN accuracy", f"{evaluation['accuracy']:.1%} ({evaluation['split']})")
    return table


def evaluation_table(evaluation: dict) -> Table:
    table = Table(title=f"1-NN accuracy {evaluation['accuracy']:.1%} on {evaluation['test_images']} test images "
                        f"({evaluation['split']})")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    table.add_column("test images", justify="right")
    for label, figures in sorted(evaluation["per_class"].items(), key=lambda item: item[1]["accuracy"]):
        table.add_row(label, f"{figures['accuracy']:.1%}", str(figures["test_images"]))
    for pair in evaluation["most_confused"][:5]:
        table.add_row(f"[dim]confused: {pair['true']} -> {pair['predicted']}[/]", "", str(pair["count"]))
    return table
