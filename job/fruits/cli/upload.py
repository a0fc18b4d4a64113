"""`fruitsctl upload`: put a local dataset folder into S3, ready for the job."""

from pathlib import Path
from typing import Annotated

import typer

from fruits.cli.console import console, print_error, upload_progress, upload_summary
from fruits.settings.config import FIELDS


def upload(
    source: Annotated[Path, typer.Argument(help="Local dataset root: <label>/<file> or <split>/<label>/<file>.")],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix to upload under (layout kept).")],
    workers: Annotated[int, typer.Option(min=1, max=64, help="Parallel uploads.")] = 8,
    include_non_images: Annotated[bool, typer.Option(help="Also upload files that are not .jpg/.jpeg/.png.")] = False,
    create_bucket: Annotated[bool, typer.Option("--create-bucket", help="Create the bucket if it is missing.")] = False,
    s3_endpoint: Annotated[str | None, typer.Option(help=FIELDS["s3_endpoint"].metadata["help"])] = None,
    s3_region: Annotated[str | None, typer.Option(help=FIELDS["s3_region"].metadata["help"])] = None,
) -> None:
    """Upload a dataset folder to S3: parallel, skips files already there (a rerun uploads nothing)."""
    from fruits.io.upload import s3_client, upload_dataset  # boto3: imported by the command that needs it

    client = s3_client(s3_endpoint, s3_region)
    with upload_progress() as (progress, task):
        report = upload_dataset(
            client,
            source,
            destination,
            include_non_images=include_non_images,
            workers=workers,
            create_bucket=create_bucket,
            advance=lambda n: progress.advance(task, n),
        )
    console.print(upload_summary(report, destination))
    if report.failed:
        print_error(f"{len(report.failed)} files failed to upload (listed above); rerun to retry only those.")
        raise typer.Exit(1)
