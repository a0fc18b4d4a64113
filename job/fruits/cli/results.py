"""`fruitsctl report`, `evaluate` and `export`: look at a finished run, or ship it to a phone (no Spark needed)."""

import json
from pathlib import Path
from typing import Annotated

import typer

from fruits.cli.console import console, evaluation_table, print_result, print_warning, report_summary
from fruits.cli.extras import require_job_extra
from fruits.results.evaluate import MAX_ROWS, evaluate
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError

OutputArg = Annotated[str, typer.Argument(help="A run's output: a folder, or an s3:// / s3a:// prefix.")]
ToOption = Annotated[
    Path | None,
    typer.Option("--to", help="Folder for report.html and evaluation.json [default: fruits-reports/<run id>]."),
]


def _folder(to: Path | None, run_id: str) -> Path:
    folder = to or Path("fruits-reports") / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _evaluate(results, sample: int | None, max_rows: int, random_split: bool = False) -> dict:
    table = results.features.to_pydict()
    return evaluate(
        table["label"],
        table["split"],
        table["pca"],
        table["path"],
        sample=sample,
        max_rows=max_rows,
        random_split=random_split,
    )


def report(output: OutputArg, to: ToOption = None, *, config: JobConfig) -> None:
    """Write a self-contained HTML report of a finished run and print its summary."""
    require_job_extra("report")
    from fruits.results.report import build_report  # matplotlib, pyarrow: imported by the commands that read runs
    from fruits.results.run_results import open_run

    results = open_run(output, config)
    folder = _folder(to, results.manifest["run_id"])
    evaluation = None
    if results.features.num_rows <= MAX_ROWS:
        evaluation = _evaluate(results, None, MAX_ROWS)
        (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False))
    target = folder / "report.html"
    target.write_text(build_report(results, evaluation), encoding="utf-8")
    console.print(report_summary(results.manifest, evaluation))
    print_result("Report", str(target))


def evaluate_command(
    output: OutputArg,
    to: ToOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    sample: Annotated[int | None, typer.Option(min=10, help="Evaluate on this many random images.")] = None,
    max_rows: Annotated[int, typer.Option(min=10, help="Refuse outputs with more images than this.")] = MAX_ROWS,
    random_split: Annotated[
        bool,
        typer.Option(
            help="A seeded random 70/30 split instead of the split column or the file names' numbering "
            "(optimistic where images are near-duplicates, as video frames are)."
        ),
    ] = False,
    *,
    config: JobConfig,
) -> None:
    """Train/test 1-NN accuracy on the PCA vectors: overall, per class, most confused pairs. The
    split keeps near-duplicates apart: the run's split column, else blocks of the file names'
    numbering (video frames), else a random split, labelled optimistic."""
    require_job_extra("evaluate")
    from fruits.results.run_results import open_run

    results = open_run(output, config)
    if results.features.num_rows < 4:
        raise UserError("The run has fewer than 4 images: too few to evaluate.")
    evaluation = _evaluate(results, sample, max_rows, random_split)
    folder = _folder(to, results.manifest["run_id"])
    (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False))
    if as_json:
        print(json.dumps(evaluation, indent=2, ensure_ascii=False))
    else:
        console.print(evaluation_table(evaluation))
        print_result("Saved", str(folder / "evaluation.json"))


def export_command(
    output: OutputArg,
    to: Annotated[
        Path, typer.Option("--to", help="Folder for featurizer.tflite, classifier.tflite, labels.txt and export.json.")
    ],
    classifier: Annotated[
        str | None,
        typer.Option(
            help="logistic: classifier.tflite ends in the run's own logistic head (the default where the run "
            "has one); centroid: a nearest-centroid head (the default otherwise); none: only the featurizer.",
            show_default=False,
        ),
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(
            help="none (float32), dynamic (int8 weights) or int8 (weights and activations, calibrated on "
            "the run's images). Default: the run's precision (int8 for an int8 run, none for float32).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        int, typer.Option(min=0, help="Images the featurizer's parity with the run is measured on (0: all).")
    ] = 256,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export in --to.")] = False,
    *,
    config: JobConfig,
) -> None:
    """Export a finished run for a phone: one TFLite graph from a photo to its PCA values (and label scores)."""
    require_job_extra("export")
    from fruits.cli.console import export_summary
    from fruits.results.export import export_run

    description = export_run(
        output, to, config, classifier=classifier, quantize=quantize, check=check, overwrite=overwrite
    )
    console.print(export_summary(description))
    for warning in description["warnings"]:
        print_warning(warning)
    print_result("Exported", str(to))
