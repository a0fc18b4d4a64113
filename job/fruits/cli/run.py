"""`fruitsctl run`: the job in Spark local mode on this machine."""

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from fruits.cli.chatter import chatter_to, log_path
from fruits.cli.console import console, print_note, print_result, print_warning, run_summary
from fruits.cli.extras import require_job_extra
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.settings.options import parse_pairs
from fruits.spark_session import LOCAL_MASTER

# The job itself (PySpark, pyarrow, TensorFlow's converter) is imported by the commands that
# run it, not when fruitsctl starts: --help and the cluster commands stay quick.

DEMO_DATA = Path.home() / ".cache" / "fruits" / "demo-images"


def run(
    config: JobConfig,
    master: Annotated[
        str,
        typer.Option(
            help="Spark master for the local run: local[N,R] runs N tasks at once and tries each up to R times."
        ),
    ] = LOCAL_MASTER,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--spark-conf", metavar="KEY=VALUE", help="Extra Spark setting for the local run (repeatable)."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show Spark's and TensorFlow's own messages live instead of only in the run's log file.",
        ),
    ] = False,
) -> None:
    """Run the job locally: images in, features + PCA out (Spark local mode)."""
    require_job_extra("run")
    from pyspark import SparkContext

    from fruits.featurize.backbone_model import BackboneInBackground
    from fruits.pipeline import run_job
    from fruits.progress import SparkProgress
    from fruits.runs.reuse import with_applied_settings
    from fruits.settings.config import new_run_id
    from fruits.spark_session import local_spark
    from fruits.write.run_log import FileLog

    config = with_applied_settings(config)  # before the backbone is prepared: an applied run's
    run_id = config.run_id or new_run_id()
    changes = {}
    if not config.input:
        from fruits.ingest.demo_data import make_demo_dataset

        changes["input"] = str(make_demo_dataset(DEMO_DATA))
        print_note(f"No --input given: using the generated demo dataset in {changes['input']}")
    if not config.output:
        changes["output"] = str(Path("fruits-output") / run_id)
    if changes:
        config = JobConfig(**{**config.to_dict(), **changes})
    extra_conf = parse_pairs("spark_conf", spark_conf or [])
    log = log_path(run_id)
    print_note(f"Starting Spark ({master}) ...")
    with nullcontext() if verbose else chatter_to(log):
        # Spark is stopped before fruitsctl returns: its JVM writes to the log file, not to our
        # output, so nobody would wait for it to flush the event log and shut down otherwise.
        # A session this process already had (tests, notebooks) is left running.
        ours = SparkContext._active_spark_context is None
        try:
            backbone = BackboneInBackground(config)  # TensorFlow's import and a conversion overlap Spark's start
            spark = local_spark(master, extra_conf, config)
            try:
                kept = None if verbose else FileLog(log)  # --verbose: the terminal has it all
                manifest = run_job(
                    spark, config, SparkProgress(spark, console), run_id=run_id, backbone=backbone, log=kept
                )
            finally:
                if ours:
                    spark.stop()
        except UserError as exc:
            if verbose:
                raise
            raise UserError(f"{exc} (Spark's and TensorFlow's messages: {log})") from None
    console.print(run_summary(manifest, None if verbose else log))
    for warning in manifest["warnings"]:
        print_warning(warning)


# What a run to apply fixes: its backbone settings and its fitted scaler + PCA.
NOT_FOR_TRANSFORM = (
    "backbone",
    "weights",
    "runtime",
    "image_size",
    "variance",
    "k",
    "fit_fraction",
    "seed",
    "incremental_from",
    "reuse_model",
    "apply_model",
)


def transform(
    config: JobConfig,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            metavar="RUN",
            help="A finished run's output (folder or s3a:// prefix) whose backbone, scaler "
            "and PCA are applied, with no refit.",
        ),
    ],
    master: Annotated[str, typer.Option(help="Spark master for the local run.")] = LOCAL_MASTER,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--spark-conf", metavar="KEY=VALUE", help="Extra Spark setting for the local run (repeatable)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Spark's and TensorFlow's own messages live.")
    ] = False,
) -> None:
    """Apply a finished run's model to new images: same features and PCA space, no refit (Spark local mode).
    On a cluster: `fruitsctl submit --apply-model RUN ...`."""
    if not config.input:
        raise UserError("transform needs --input: the images to apply the model to.")
    run(JobConfig(**{**config.to_dict(), "apply_model": model}), master, spark_conf, verbose)


def demo_data(
    folder: Annotated[Path, typer.Argument(help="Where to write <class>/<n>.jpg.")],
    per_class: Annotated[int, typer.Option(min=2, max=10_000, help="Images per class.")] = 24,
) -> None:
    """Write the generated demo dataset (synthetic fruit images) to a folder."""
    require_job_extra("demo-data")
    from fruits.ingest.demo_data import make_demo_dataset

    make_demo_dataset(folder, per_class=per_class)
    print_result("Demo dataset", str(folder))
