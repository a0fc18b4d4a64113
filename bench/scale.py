"""`make bench-scale`: every results command on the whole Fruits-360 training split.

    python bench/scale.py [--input ../shared/data/fruits360-training] [--json bench/results-scale.json]
                          [--run-args "--image-size 224"]

In order, each a `fruitsctl` process of its own with the default settings (plus --run-args for
`run`), Spark local mode on all cores: `run` on the input, `transform` of the same input with
that run's model, then `evaluate`, `report` and `export` (float and `--quantize int8`) of the
run. For each: wall time, rows per second, and the peak RSS of its process tree, split into
the driver (fruitsctl's Python plus Spark's JVM) and the largest Python worker, sampled every
0.2 s (bench.py's sampler). One run of each: at 41,322 images a repeat costs minutes; compare
figures within one run of this script.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, SHARED, WEIGHTS, PeakRss

FRUITSCTL = ROOT / ".venv" / "bin" / "fruitsctl"
TRAINING = SHARED / "data" / "fruits360-training"
EXPORTS = {"none": "export", "int8": "export_int8"}  # each --quantize measured, and its command's name
EXPORT_FIGURES = ("classifier_kind", "file_bytes", "classifier", "split")  # kept from each export.json


def timed(command: list[str]) -> dict:
    """Run one fruitsctl command under the sampler: its wall time and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRss(root=process.pid) as peak:
        output, _ = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed (exit {process.returncode}):\n{output[-3000:]}")
    return {
        "wall_s": round(wall, 1),
        "peak_rss_driver_mb": round(peak.driver),
        "peak_rss_worker_mb": round(peak.worker),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=Path(os.environ.get("BENCH_INPUT") or TRAINING))
    parser.add_argument("--json", help="Also write the figures to this file.")
    parser.add_argument(
        "--run-args",
        default=os.environ.get("BENCH_SCALE_ARGS", ""),
        help="more options for `fruitsctl run`, e.g. '--image-size 224' (the phone model's size)",
    )
    args = parser.parse_args()
    if not args.input.is_dir():
        raise SystemExit(f"{args.input} is not a folder: give --input a folder of labelled images.")
    (ROOT / ".cache").mkdir(exist_ok=True)
    figures: dict = {"input": str(args.input), "run_args": args.run_args, "cpus": os.cpu_count(), "commands": {}}
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=ROOT / ".cache") as folder:
        work = Path(folder)
        run, applied = work / "run", work / "transform"
        fruitsctl = [str(FRUITSCTL)]
        quiet = ["--spark-conf", "spark.ui.enabled=false"]
        weights = ["--weights", str(WEIGHTS)]  # the shared backbone: no ImageNet download offline
        run_options = [*weights, *quiet, *shlex.split(args.run_args)]
        figures["commands"]["run"] = timed(
            [*fruitsctl, "run", "--input", str(args.input), "--output", str(run), *run_options]
        )
        manifest = json.loads((run / "manifest.json").read_text())
        images, labels = manifest["counts"]["ok"], len(manifest["labels"])
        commands = {  # each reads the run's output
            "transform": [*fruitsctl, "transform", "--model", str(run), "--input", str(args.input)]
            + ["--output", str(applied), *quiet],
            "evaluate": [*fruitsctl, "evaluate", str(run), "--json", "--to", str(work / "evaluation")],
            "report": [*fruitsctl, "report", str(run), "--to", str(work / "report")],
        }
        commands |= {
            name: [*fruitsctl, "export", str(run), "--to", str(work / name), "--quantize", quantize]
            for quantize, name in EXPORTS.items()
        }
        for name, command in commands.items():
            figures["commands"][name] = timed(command)
        for row in figures["commands"].values():  # every command reads all the run's rows
            row["rows_per_s"] = round(images / row["wall_s"], 1)
        evaluation = json.loads((work / "evaluation" / "evaluation.json").read_text())
        exported = {
            quantize: json.loads((work / name / "export.json").read_text()) for quantize, name in EXPORTS.items()
        }
        figures |= {
            "images": images,
            "labels": labels,
            "k": manifest["pca"]["k"],
            "run_stages_s": manifest["timings_s"],
            "head_held_out_top1": (manifest.get("classifier") or {}).get("held_out_top1"),
            "evaluate_1nn_top1": evaluation["accuracy"],
            "evaluate_split": evaluation["split"],
            "report_mb": round((work / "report" / "report.html").stat().st_size / 1e6, 1),
            "export": {
                quantize: {key: description.get(key) for key in EXPORT_FIGURES}
                for quantize, description in exported.items()
            },
        }
        keep = ROOT / ".cache" / "bench-scale-report.html"
        shutil.copy(work / "report" / "report.html", keep)  # to look at: 81 labels in one page
    print(f"{images} images, {labels} labels, k = {figures['k']}, {figures['cpus']} CPUs")
    print(f"{'command':<12} {'wall s':>8} {'rows/s':>8} {'driver MB':>10} {'worker MB':>10}")
    for name, row in figures["commands"].items():
        worker = row["peak_rss_worker_mb"] or "-"
        print(f"{name:<12} {row['wall_s']:>8} {row['rows_per_s']:>8} {row['peak_rss_driver_mb']:>10} {worker:>10}")
    print(f"head held-out top-1 {figures['head_held_out_top1']}, 1-NN {figures['evaluate_1nn_top1']}")
    for quantize, description in exported.items():
        megabytes = description["file_bytes"]["classifier.tflite"] / 1e6
        print(
            f"phone model ({description['classifier_kind']}, --quantize {quantize}): top-1 on LiteRT "
            f"{description['classifier']['top1']}, {megabytes:.1f} MB, "
            f"{description['classifier']['ms_per_photo_one_thread']} ms a photo on one thread"
        )
    print(f"report {figures['report_mb']} MB (kept as {keep.relative_to(ROOT)})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
