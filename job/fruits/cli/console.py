"""All of fruitsctl's Rich output: one console, summaries and error lines."""

from rich.console import Console
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
