"""All of fruitsctl's Rich output: one console, summaries and error lines.

Markup is off on both consoles: paths, labels, names and error texts come from users and
may hold "[", "]" or "%", which Rich would take for markup (and crash on, or drop). Styles
are given as styles (`styled`, style=...), never written into text.
"""

from contextlib import contextmanager

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(stderr=False, highlight=False, markup=False)
error_console = Console(stderr=True, highlight=False, markup=False)


def styled(*parts: str | Text | tuple[str, str]) -> Text:
    """Text from plain strings and (string, style) pairs; nothing in them is markup."""
    return Text.assemble(*parts)


def print_error(message: str) -> None:
    error_console.print(styled(("Error:", "bold red"), " ", message), soft_wrap=True)


def print_warning(message: str) -> None:
    error_console.print(styled(("Warning:", "bold yellow"), " ", message), soft_wrap=True)


def print_note(message: str) -> None:
    error_console.print(message, style="dim", soft_wrap=True)


def print_result(label: str, value: str) -> None:
    """A closing line such as "Report: PATH" (the value in bold)."""
    console.print(styled(f"{label}: ", (value, "bold")), soft_wrap=True)


def run_summary(manifest: dict, log=None) -> Table:
    counts, pca = manifest["counts"], manifest["pca"]
    table = Table(title="Run complete", show_header=False, title_style="bold green")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a path is wrapped, never cut: users copy it
    table.add_row("images read", str(counts["read"]))
    table.add_row("featurized", str(counts["ok"]))
    if incremental := manifest.get("incremental"):
        table.add_row(
            "reused",
            f"{incremental['reused']} rows of run {incremental['previous_run_id']} "
            f"({incremental['featurized']} images through the CNN, {incremental['removed']} "
            "gone from the input)",
        )
    table.add_row("errors", styled((str(counts["failed"]), "red")) if counts["failed"] else "0")
    skipped = counts.get("skipped") or {}
    if skipped:
        table.add_row("skipped", ", ".join(f"{count} {rule}" for rule, count in sorted(skipped.items())))
    table.add_row("labels", str(len(manifest["labels"])))
    table.add_row(
        "backbone",
        f"{manifest['backbone']['name']} @ {manifest['backbone']['image_size']}px "
        f"({manifest['backbone']['feature_dim']}-d)",
    )
    table.add_row(
        "PCA k",
        f"{pca['k']} (variance kept {pca['variance_kept']:.1%})"
        + (f", the model of run {pca['fitted_by']['run_id']}" if pca.get("fitted_by") else ""),
    )
    table.add_row("wall time", f"{manifest['timings_s']['total']:.1f} s")
    table.add_row("cost", f"{manifest['cost']['core_seconds_per_1000_images']} core-s / 1000 images")
    table.add_row("output", manifest["output"])
    if log:
        table.add_row("log", f"{log} (Spark's and TensorFlow's messages)")
    return table


def export_summary(description: dict) -> Table:
    table = Table(title=f"Export of run {description['run_id']}", show_header=False, title_style="bold green")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("input", f"uint8 RGB {description['input']['shape']}")
    for name, size in description["file_bytes"].items():
        table.add_row(name, f"{size / 1e6:.2f} MB" if size > 100_000 else f"{size} bytes")
    parity = description["featurizer_parity"]
    table.add_row(
        "featurizer vs run",
        f"max |diff| {parity['max_abs_diff']:.2e} on {parity['images']} images "
        f"(|pca| up to {parity['max_abs_pca']:.1f})",
    )
    if head := description["classifier"]:
        table.add_row(
            "classifier top-1",
            f"{head['top1']:.1%} on {head['test_images']} held-out images "
            f"({head['metric']})" + (f", float {head['top1_float']:.1%}" if "top1_float" in head else ""),
        )
        table.add_row("classifier speed", f"{head['ms_per_photo_one_thread']:.1f} ms per photo, one thread, here")
    return table


@contextmanager
def upload_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("[bold]upload"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        yield progress, progress.add_task("upload", total=None)


def upload_summary(report, destination: str) -> Table:
    table = Table(title=f"Upload to {destination}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("uploaded", str(len(report.uploaded)))
    table.add_row("skipped (already there)", str(len(report.skipped)))
    table.add_row("failed", styled((str(len(report.failed)), "red")) if report.failed else "0")
    if report.not_images:
        examples = ", ".join(report.not_images[:3])
        table.add_row(
            "not images, left out", f"{len(report.not_images)} (e.g. {examples}; --include-non-images uploads them)"
        )
    for key, reason in report.failed[:10]:
        table.add_row(styled((key, "red")), reason)
    return table


def report_summary(manifest: dict, evaluation: dict | None) -> Table:
    table = run_summary(manifest)
    table.title = f"Run {manifest['run_id']}"
    if evaluation:
        table.add_row("1-NN accuracy", f"{evaluation['accuracy']:.1%} ({evaluation['split']})")
    return table


def evaluation_table(evaluation: dict) -> Table:
    table = Table(
        title=f"1-NN accuracy {evaluation['accuracy']:.1%} on {evaluation['test_images']} test images "
        f"({evaluation['split']})"
    )
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    table.add_column("test images", justify="right")
    for label, figures in sorted(evaluation["per_class"].items(), key=lambda item: item[1]["accuracy"]):
        table.add_row(label, f"{figures['accuracy']:.1%}", str(figures["test_images"]))
    for pair in evaluation["most_confused"][:5]:
        table.add_row(styled((f"confused: {pair['true']} -> {pair['predicted']}", "dim")), "", str(pair["count"]))
    return table


STATE_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "SUBMISSION_FAILED": "red",
    "RUNNING": "cyan",
    "PENDING_RERUN": "yellow",
    "FAILING": "yellow",
}


def _state(text: str) -> Text:
    return styled((text, STATE_STYLES.get(text, "white")))


def state_line(app: dict) -> Text:
    from fruits.cluster import states

    executors = states.executor_counts(app)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(executors.items())) or "none yet"
    return styled(f"{app['metadata']['name']}: ", _state(states.state(app)), f"   executors: {counts}")


def status_table(app: dict) -> Table:
    from fruits.cluster import states

    submissions, executions = states.attempts(app)
    age, duration = states.age_and_duration(app)
    table = Table(title=f"SparkApplication {app['metadata']['name']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", _state(states.state(app)))
    table.add_row("attempts", f"{submissions} submissions, {executions} executions")
    table.add_row("age / duration", f"{age} / {duration}")
    table.add_row("driver pod", states.driver_pod(app) or "-")
    table.add_row("Spark UI", states.ui_address(app) or "-")
    executors = (app.get("status") or {}).get("executorState") or {}
    table.add_row("executors", "\n".join(f"{pod}: {state}" for pod, state in sorted(executors.items())) or "-")
    if states.error_message(app):
        table.add_row("error", styled((states.error_message(app), "red")))
    return table


def apps_table(apps: list[dict]) -> Table:
    from fruits.cluster import states

    table = Table(title="Fruits! runs")
    for column in ("name", "state", "age", "duration"):
        table.add_column(column)
    for app in apps:
        age, duration = states.age_and_duration(app)
        table.add_row(app["metadata"]["name"], _state(states.state(app)), age, duration)
    return table


def events_table(events) -> Table:
    table = Table(title="Events")
    for column in ("time", "type", "object", "reason", "message"):
        table.add_column(column)
    for event in events:
        when = _event_time(event)
        style = "red" if event.type == "Warning" else ""
        table.add_row(
            str(when or ""),
            styled((str(event.type), style)),
            f"{event.involved_object.kind}/{event.involved_object.name}",
            event.reason or "",
            event.message or "",
        )
    return table


def event_line(event) -> Text:
    """One event as it happens (`events --follow`): time, type, object, reason, message, repeats."""
    when = _event_time(event)
    repeats = f" (x{event.count})" if (event.count or 1) > 1 else ""
    return styled(
        f"{when or ''}  ",
        (str(event.type), "red" if event.type == "Warning" else ""),
        f"  {event.involved_object.kind}/{event.involved_object.name}  ",
        (event.reason or "", "bold"),
        f"  {event.message or ''}{repeats}",
    )


def _event_time(event):
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp
