"""The job's spark-submit entry point: `spark-submit job/main.py --input ... --output ...`.

Takes the same options as `fruitsctl run` (built from the same JobConfig fields) and a
--config file; Spark's master, resources and S3 settings come from spark-submit's conf.
"""

import argparse
import json
import sys
from typing import TYPE_CHECKING

from fruits import __version__
from fruits.settings.config import FIELDS, build_config, flag, load_config_file, value_type
from fruits.settings.errors import EXIT_USER_ERROR, UserError

if TYPE_CHECKING:
    from fruits.write.run_log import TeeLog


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fruits-job", description=__doc__.splitlines()[0])
    parser.add_argument("--config", dest="config_file", help="YAML/JSON file of job options.")
    for name, field in FIELDS.items():
        kind = value_type(name)
        if kind is bool:
            parser.add_argument(
                flag(name), action=argparse.BooleanOptionalAction, default=None, help=field.metadata["help"]
            )
        else:
            # Values are strings here: build_config converts and checks them, as for the CLI.
            parser.add_argument(flag(name), dest=name, default=None, help=field.metadata["help"])
    return parser


def main(argv: list[str] | None = None) -> int:
    from fruits.write.run_log import TeeLog

    log = TeeLog()
    with log.capturing():  # kept under the output's _logs/ once the run holds its output
        return run(argv, log)


def run(argv: list[str] | None, log: "TeeLog") -> int:
    args = vars(argument_parser().parse_args(argv))
    try:
        config_file = args.pop("config_file")
        layers = [load_config_file(config_file)] if config_file else []
        config = build_config(*layers, args)
        print(
            f"Fruits! job {__version__}: {config.input} -> {config.output} ({config.backbone}, {config.image_size} px, "
            f"{config.runtime})",
            file=sys.stderr,
            flush=True,
        )
        from fruits.featurize.backbone_model import BackboneInBackground
        from fruits.pipeline import run_job  # after argument checks: imports Spark
        from fruits.runs.reuse import with_applied_settings
        from fruits.spark_session import submitted_spark

        config = with_applied_settings(config)  # --apply-model: that run's backbone settings
        backbone = BackboneInBackground(config)  # overlaps the SparkContext's start
        spark = submitted_spark(config)
        try:
            manifest = run_job(spark, config, backbone=backbone, log=log)
        finally:
            spark.stop()
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    for warning in manifest["warnings"]:
        print(f"Warning: {warning}", file=sys.stderr)
    print(
        json.dumps(
            {
                "run_id": manifest["run_id"],
                "counts": manifest["counts"],
                "k": manifest["pca"]["k"],
                "output": manifest["output"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
