"""`make bench`: how fast the pipeline runs against the raw model and the seeds' approach.

    python bench/bench.py [--images N] [--repeats R] [--sizes 96,160] [--input FOLDER]

Each measurement runs in a fresh Python process (cold numbers include Python worker
start and model load), on the Fruits-360 sample replicated to N images, with the shared
backbone weights, in Spark local mode on all cores. Figures are medians of R runs with
their spread (min-max). Prints a table; writes bench/results.json.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
SAMPLE = SHARED / "data" / "fruits360-sample"
WEIGHTS = SHARED / "models" / "mobilenet_v2_backbone.weights.h5"
WORK = HERE / "data"
CODE_ENV = "FRUITS_BENCH_CODE"  # the job/ folder a child measures (default: this checkout's)


def code_at(revision: str) -> Path:
    """This repository's job/ folder at `revision` (a commit), extracted under WORK."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    target = WORK / f"code-{commit}"
    if not (target / "job").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "job"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "job"


# ---------------------------------------------------------------- dataset and quality
def replicate_sample(images: int) -> Path:
    """The sample copied to `images` files: copy c of file f is <label>/c<c>_<f>."""
    target = WORK / f"sample-{images}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    originals = sorted(SAMPLE.glob("*/*.jpg"))
    for i in range(images):
        source = originals[i % len(originals)]
        destination = target / source.parent.name / f"c{i // len(originals)}_{source.name}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    (target / ".complete").touch()
    return target


def held_out_accuracy(paths, labels, vectors) -> float:
    """Leave-one-out 1-NN accuracy over the original images (copy 0 only: no duplicates).

    Every image is classified by its nearest other image: all 648 are test points, and the
    figure does not depend on the order of the output rows.
    """
    keep = np.array([p.rsplit("/", 1)[1].startswith("c0_") for p in paths])
    x, y = np.stack(np.asarray(vectors, dtype=object)[keep]).astype(np.float64), np.asarray(labels)[keep]
    squared = (x * x).sum(1)
    distances = squared[:, None] + squared[None, :] - 2 * x @ x.T
    np.fill_diagonal(distances, np.inf)
    return float((y[distances.argmin(1)] == y).mean())


def frame_block_accuracy(table: dict) -> dict:
    """1-NN on `pca`, held out as `fruitsctl evaluate` does on a real folder (frame blocks)."""
    from fruits.results.evaluate import evaluate

    found = evaluate(table["label"], table["split"], table["pca"], table["path"])
    return {"accuracy": found["accuracy"], "split": found["split"], "test_images": found["test_images"]}


# ---------------------------------------------------------------- memory sampling
def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
                names[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
    found, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found[child] = names.get(child, "")
            stack.append(child)
    return found


class PeakRss:
    """Peak RSS of a driver process (this one, or `root`) + its JVM, and of the largest Python
    worker under it."""

    def __init__(self, root: int | None = None):
        from fruits.spark_session import JOB_SPARK_CONF

        # Python workers are forks of the daemon: they share its command line, `python -m MODULE`
        # (the JVM's command line names the module too, in a --conf: not a worker).
        self._worker_module = f"-m {JOB_SPARK_CONF['spark.python.daemon.module']}"
        self.root = root or os.getpid()
        self.driver = self.worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.wait(0.2):
            tree = _descendants(self.root)
            jvm = sum(_rss_mb(p) for p, cmd in tree.items() if "java" in cmd.split(" ")[0])
            workers = [_rss_mb(p) for p, cmd in tree.items() if self._worker_module in cmd]
            self.driver = max(self.driver, _rss_mb(self.root) + jvm)
            self.worker = max([self.worker, *workers])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- measurements (child processes)
def measure_raw(size: int, batch: int, images: int, runtime: str, precision: str = "float32") -> dict:
    """The backbone alone on preprocessed arrays, in the runtime the pipeline uses, one
    thread (as in one Spark task)."""
    from fruits.featurize.backbone_model import load_backbone
    from fruits.featurize.decode import decode_image
    from fruits.settings.backbones import BACKBONES

    backbone = BACKBONES["mobilenet_v2"]
    try:
        predict = load_backbone(backbone, size, str(WEIGHTS), 1, runtime, precision=precision)
    except TypeError:  # an older version (--before): float32 only
        predict = load_backbone(backbone, size, str(WEIGHTS), 1, runtime)
    files = sorted(SAMPLE.glob("*/*.jpg"))[:batch]
    chunk = backbone.preprocess(np.stack([decode_image(f.read_bytes(), size) for f in files]))
    predict(chunk)
    start = time.perf_counter()
    for _ in range(max(1, images // batch)):
        predict(chunk)
    return {"img_s": max(1, images // batch) * batch / (time.perf_counter() - start)}


def measure_decode(size: int, batch: int, images: int) -> dict:
    """Decoding, resizing and normalising alone, one thread: the per-image work that no
    pipeline can avoid before the model runs."""
    from fruits.featurize.decode import decode_image
    from fruits.settings.backbones import BACKBONES

    backbone = BACKBONES["mobilenet_v2"]
    data = [f.read_bytes() for f in sorted(SAMPLE.glob("*/*.jpg"))]
    pixels = np.empty((batch, size, size, 3), dtype=np.uint8)
    inputs = np.empty((batch, size, size, 3), dtype=np.float32)
    best = float("inf")
    for _ in range(max(3, images // len(data))):  # the best of several passes: least disturbed
        start = time.perf_counter()
        for first in range(0, len(data) - batch + 1, batch):  # as featurize does, batch by batch
            for i, image in enumerate(data[first : first + batch]):
                pixels[i] = decode_image(image, size)
            backbone.preprocess(pixels, out=inputs)
        best = min(best, time.perf_counter() - start)
    return {"ms_per_image": 1000 * best / (len(data) // batch * batch)}


def measure_pipeline(
    dataset: str, size: int, warm_runs: int, runtime: str, baked: bool = False, precision: str | None = None
) -> dict:
    """Cold and warm runs of the job on `dataset`, with their 1-NN accuracy: leave-one-out over
    the replicated sample's originals, or, on a real folder (--input), held out by the file
    names' numbering (frame blocks: `fruitsctl evaluate`'s split)."""
    import pyarrow.parquet as pq

    from fruits.featurize.runtimes import BAKED_DIR_ENV, bake, local_cache_dir
    from fruits.pipeline import run_job
    from fruits.settings.config import JobConfig, build_config
    from fruits.spark_session import local_spark

    # A truly cold start, like a fresh executor pod: no converted TFLite model on disk yet,
    # unless `baked`: then one baked as the image bakes it (a pod of our image); the JVM and its
    # Python workers, started below, inherit the setting.
    shutil.rmtree(local_cache_dir(), ignore_errors=True)
    chosen = {"precision": precision} if precision else {}  # None: the version's default (--before)
    if "classifier" in JobConfig.__dataclass_fields__:
        # the pipeline's throughput without the head, whose fit is a pass per L-BFGS iteration over
        # the vectors, not over the images (make bench-scale times it)
        chosen["classifier"] = "none"
    if baked:
        model = bake(str(WORK / "baked"), "mobilenet_v2", size, str(WEIGHTS), precision or "float32")
        os.environ[BAKED_DIR_ENV] = str(model.parent)
        shutil.rmtree(local_cache_dir(), ignore_errors=True)  # baking converted through it
    config = build_config(
        {
            "input": dataset,
            "output": str(WORK / "unused"),
            "weights": str(WEIGHTS),
            "image_size": size,
            "runtime": runtime,
            **chosen,
        }
    )
    try:  # as fruitsctl does: the model prepared while Spark starts (older versions: within the run)
        from fruits.featurize.backbone_model import BackboneInBackground

        first = {"backbone": BackboneInBackground(config)}
    except ImportError:
        first = {}
    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    runs, accuracy = [], None
    with PeakRss() as rss:
        for attempt in range(1 + warm_runs):
            output = WORK / f"out-pipeline-{os.getpid()}-{attempt}"
            shutil.rmtree(output, ignore_errors=True)
            config = build_config(
                {
                    "input": dataset,
                    "output": str(output),
                    "weights": str(WEIGHTS),
                    "image_size": size,
                    "runtime": runtime,
                    **chosen,
                }
            )
            manifest = run_job(spark, config, **(first if attempt == 0 else {}))
            runs.append(
                {
                    "img_s": manifest["counts"]["read"] / manifest["timings_s"]["total"],
                    "wall_s": manifest["timings_s"]["total"],
                    "images": manifest["counts"]["read"],
                    "timings_s": manifest["timings_s"],
                    "k": manifest["pca"]["k"],
                }
            )
            if accuracy is None:
                table = pq.read_table(output / "features", columns=["path", "label", "split", "pca"]).to_pydict()
                accuracy = (
                    held_out_accuracy(table["path"], table["label"], table["pca"])
                    if Path(dataset).is_relative_to(WORK)
                    else frame_block_accuracy(table)
                )
            shutil.rmtree(output, ignore_errors=True)
    spark.stop()
    return {
        "cold": runs[0],
        "warm": runs[1:],
        "accuracy": accuracy,
        "peak_rss_mb": {"driver_and_jvm": round(rss.driver), "python_worker": round(rss.worker)},
    }


# Where a warm image's core time goes: each sampled worker stack is charged to the innermost
# frame that names one of these (file, function) pairs, first match wins; the rest of the
# worker's time is Spark's worker protocol (task hand-over, pickling, results).
PROFILE_PARTS = (
    ("inference", "runtimes.py", ("__call__",)),
    ("decode", "decode.py", ("_fast_jpeg", "decode_with_pillow", "_to_rgb")),
    ("resize", "decode.py", ("_resized",)),
    ("normalise", "backbones.py", ("preprocess",)),
    ("moments", "moments.py", ("",)),
    ("moments", "tally.py", ("PartitionTally",)),
    ("read files", "storage.py", ("read_many", "_read_local", "_read_object")),
    ("Parquet write", "storage.py", ("writer", "write", "write_bytes")),
    ("Parquet write", "partitions.py", ("featurize_partition",)),  # its write_table calls
    ("Arrow rows", "partitions.py", ("featurize_files",)),
    ("PCA projection (write stage)", "reduce.py", ("project_files",)),
    ("statistics merge", "tally.py", ("merge_group", "RunTally")),
)


def _profile_part(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        function, _, where = frame.partition(" (")
        for part, filename, functions in PROFILE_PARTS:
            in_file = f"/{filename}:" in where or where.startswith(f"{filename}:")
            if in_file and any(name in function for name in functions):
                return part
    return "Spark worker protocol, other Python"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_profile(dataset: str, size: int, runtime: str, rate: int = 200) -> dict:
    """One warm run with its Python workers sampled by py-spy (active samples only, so their
    CPU time) and the JVM's and driver's CPU read from /proc: core-ms per image, by part."""
    from fruits.pipeline import run_job
    from fruits.settings.config import build_config
    from fruits.spark_session import local_spark

    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    outputs = [WORK / f"out-profile-{os.getpid()}-{i}" for i in range(2)]

    def run(output):
        shutil.rmtree(output, ignore_errors=True)
        config = build_config(
            {"input": dataset, "output": str(output), "weights": str(WEIGHTS), "image_size": size, "runtime": runtime}
        )
        return run_job(spark, config)

    run(outputs[0])  # warm-up: workers started, model loaded
    tree = _descendants(os.getpid())
    workers = [pid for pid, cmd in tree.items() if "-m fruits.featurize.spark_worker" in cmd]
    jvms = [pid for pid, cmd in tree.items() if "java" in cmd.split(" ")[0]]
    samples = WORK / f"profile-{os.getpid()}"
    samplers = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                f"{samples}-{pid}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]
    time.sleep(1.0)  # samplers attached
    jvm_before, driver_before = sum(map(_cpu_seconds, jvms)), time.process_time()
    manifest = run(outputs[1])
    jvm_cpu, driver_cpu = sum(map(_cpu_seconds, jvms)) - jvm_before, time.process_time() - driver_before
    for sampler in samplers:
        sampler.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
        sampler.wait()
    parts: dict[str, float] = {}
    for pid in workers:
        path = Path(f"{samples}-{pid}.txt")
        for line in path.read_text().splitlines() if path.exists() else []:
            stack, _, count = line.rpartition(" ")
            part = _profile_part(stack)
            parts[part] = parts.get(part, 0.0) + int(count) / rate
        path.unlink(missing_ok=True)
    spark.stop()
    for output in outputs:
        shutil.rmtree(output, ignore_errors=True)
    images = manifest["counts"]["read"]
    parts["JVM (Spark: scheduling, task hand-over)"] = jvm_cpu
    parts["driver Python (planning, PCA fit, manifest)"] = driver_cpu
    return {
        "images": images,
        "wall_s": manifest["timings_s"]["total"],
        "core_ms_per_image": {
            part: round(1000 * seconds / images, 3)
            for part, seconds in sorted(parts.items(), key=lambda item: -item[1])
        },
    }


def measure_stats(datasets: list[str], images_per_task: int) -> dict:
    """What the driver receives for the PCA statistics, at growing data and task counts (the
    tasks are many small ones on purpose: one per `images_per_task` images)."""
    from fruits.pipeline import run_job
    from fruits.settings.config import build_config
    from fruits.spark_session import local_spark

    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    found = {}
    for dataset in datasets:
        output = WORK / f"out-stats-{os.getpid()}"
        shutil.rmtree(output, ignore_errors=True)
        images = sum(1 for _ in Path(dataset).glob("*/*.jpg"))
        config = build_config(
            {
                "input": dataset,
                "output": str(output),
                "weights": str(WEIGHTS),
                "partitions": max(1, images // images_per_task),
            }
        )
        featurize = run_job(spark, config)["featurize"]
        found[str(images)] = {"tasks": featurize["partitions"], "bytes": featurize["stats_bytes_to_driver"]}
        shutil.rmtree(output, ignore_errors=True)
    spark.stop()
    return found


def measure_seeds(dataset: str, images: int) -> dict:
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE))
    from fruits.spark_session import local_spark
    from seeds_baseline import run_seeds

    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    output = WORK / f"out-seeds-{os.getpid()}"
    start = time.perf_counter()
    result = run_seeds(spark, dataset, str(output), str(WEIGHTS))
    wall = time.perf_counter() - start
    table = pq.read_table(output / "features", columns=["path", "label", "pca"]).to_pydict()
    shutil.rmtree(output, ignore_errors=True)
    spark.stop()
    return {
        "img_s": images / wall,
        "k": result["k"],
        "accuracy": held_out_accuracy(table["path"], table["label"], table["pca"]),
    }


def measure_incremental(dataset: str, size: int, runtime: str, repeats: int, new_every: int = 10) -> dict:
    """A nightly run on a growing input: the previous run saw all images but every
    `new_every`-th; then they arrive. Full run vs incremental run (--incremental-from the
    previous) on the same final input, alternately in one warm Spark session; job wall time
    (the manifest's total, Spark's start excluded: it is the same for both)."""
    from fruits.pipeline import run_job
    from fruits.settings.config import build_config
    from fruits.spark_session import local_spark

    base = WORK / f"incremental-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    images = base / "images"
    shutil.copytree(dataset, images, copy_function=os.link)  # hard links: the same sizes and times
    arriving = sorted(images.glob("*/*.jpg"))[::new_every]
    held = base / "held"
    for path in arriving:
        (held / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(held / path.parent.name / path.name)
    settings = {"input": str(images), "weights": str(WEIGHTS), "image_size": size, "runtime": runtime}
    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    run_job(spark, build_config({**settings, "output": str(base / "previous")}))  # also warms Spark up
    for path in arriving:
        (held / path.parent.name / path.name).rename(path)
    full, incremental, refit, reused = [], [], [], None
    for attempt in range(repeats):
        for kind, times in (("full", full), ("incremental", incremental), ("reuse-model", refit)):
            output = base / f"{kind}-{attempt}"
            extra = {} if kind == "full" else {"incremental_from": str(base / "previous")}
            if kind == "reuse-model":
                extra["reuse_model"] = True
            manifest = run_job(spark, build_config({**settings, **extra, "output": str(output)}))
            times.append(manifest["timings_s"]["total"])
            reused = manifest.get("incremental") or reused
            shutil.rmtree(output)
    spark.stop()
    shutil.rmtree(base, ignore_errors=True)
    return {
        "images": len(list(Path(dataset).glob("*/*.jpg"))),
        "new": len(arriving),
        "full_s": full,
        "incremental_s": incremental,
        "reuse_model_s": refit,
        "reused": reused["reused"],
        "ratios": [round(i / f, 3) for i, f in zip(incremental, full)],
    }


def measure_export(images: int = 300) -> dict:
    """fruitsctl export of a run on the Fruits-360 sample, float / dynamic / int8: file sizes,
    what the export measured, and single-thread LiteRT latency per photo (one at a time, as a
    phone runs it), next to the pipeline's core-ms per image in the same run."""
    from fruits.pipeline import run_job
    from fruits.results.export import CLASSIFIER, FEATURIZER, LiteModel, export_run
    from fruits.settings.config import DEFAULTS, build_config
    from fruits.spark_session import local_spark

    base = WORK / f"export-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    spark = local_spark("local[*]", {"spark.ui.enabled": "false"})
    manifest = run_job(
        spark, build_config({"input": str(SAMPLE), "output": str(base / "run"), "weights": str(WEIGHTS)})
    )
    spark.stop()
    size = manifest["backbone"]["image_size"]
    photos = [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(images)]
    found = {"pipeline_core_ms_per_image": manifest["cost"]["core_seconds_per_1000_images"], "variants": {}}
    for quantize in ("none", "dynamic", "int8"):
        description = export_run(str(base / "run"), base / quantize, DEFAULTS, quantize=quantize)
        latency = {}
        for name in (FEATURIZER, CLASSIFIER):
            model = LiteModel((base / quantize / name).read_bytes(), threads=1)
            for photo in photos[:20]:  # warm-up: XNNPACK packs the weights on the first calls
                model(photo)
            started = time.perf_counter()
            for photo in photos:
                model(photo)
            latency[name] = round((time.perf_counter() - started) * 1000 / len(photos), 3)
        found["variants"][quantize] = {
            "bytes": description["file_bytes"],
            "ms_per_image_one_thread": latency,
            "featurizer_max_abs_diff": description["featurizer_parity"]["max_abs_diff"],
            "top1": description["classifier"]["top1"],
        }
    shutil.rmtree(base, ignore_errors=True)
    return found


def in_child(kind: str, code: Path | None = None, **kwargs) -> dict:
    """Run one measurement in a fresh interpreter; it prints its result as JSON last. With
    `code` (an older version's job/ folder), the child and its Spark workers run that code."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if code:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
        env[CODE_ENV] = str(code)
    command = [sys.executable, __file__, "--child", kind, "--kwargs", json.dumps(kwargs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"benchmark step {kind} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- orchestration
def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": [round(v, 2) for v in values],
    }


def raw_throughput(size: int, batch: int, images: int, cores: int, runtime: str, precision: str = "float32") -> float:
    """Aggregate img/s of `cores` concurrent single-thread processes (one per Spark task slot)."""
    results: list[dict] = []
    kwargs = {"size": size, "batch": batch, "images": images, "runtime": runtime, "precision": precision}
    threads = [threading.Thread(target=lambda: results.append(in_child("raw", **kwargs))) for _ in range(cores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(r["img_s"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=int(os.environ.get("BENCH_IMAGES", 2592)))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", 3)))
    parser.add_argument("--size", type=int, default=None, help="image size (default: the job's default)")
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES", ""),
        help="extra settings to sweep: sizes, or size:runtime, e.g. 96,160,128:tf",
    )
    parser.add_argument(
        "--scale-images",
        type=int,
        default=int(os.environ.get("BENCH_SCALE_IMAGES", 0)),
        help="also measure raw model and warm pipeline at this larger size (no seeds run)",
    )
    parser.add_argument(
        "--before",
        default=os.environ.get("BENCH_BEFORE", ""),
        help="also measure the pipeline's cold, warm and memory figures at this git revision (old vs new)",
    )
    parser.add_argument(
        "--input",
        default=os.environ.get("BENCH_INPUT", ""),
        help="also run each precision on this real folder (e.g. ../shared/data/fruits360-training): wall "
        "times, and 1-NN accuracy held out by frame blocks",
    )
    parser.add_argument("--skip-seeds", action="store_true", help="leave out the seeds' approach (slow)")
    parser.add_argument(
        "--only",
        choices=("incremental", "export", "precision"),
        help="one measurement alone: incremental vs full runs (at --images, and --scale-images if "
        "given), the phone export, or int8 vs float32 (and --input); writes bench/results-ONLY.json",
    )
    parser.add_argument("--child")
    parser.add_argument("--kwargs")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.environ.get(CODE_ENV, str(ROOT / "job")))
        measure = {
            "raw": measure_raw,
            "decode": measure_decode,
            "pipeline": measure_pipeline,
            "seeds": measure_seeds,
            "stats": measure_stats,
            "profile": measure_profile,
            "incremental": measure_incremental,
            "export": measure_export,
        }[args.child]
        print(json.dumps(measure(**json.loads(args.kwargs))))
        return

    from fruits.settings.config import DEFAULTS

    for needed in (SAMPLE, WEIGHTS):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: the benchmark needs ../shared beside the project.")
    size, batch, cores = args.size or DEFAULTS.image_size, DEFAULTS.batch_size, os.cpu_count() or 1
    runtime = DEFAULTS.runtime
    dataset = str(replicate_sample(args.images))
    print(
        f"benchmark: {args.images} images, {size}px, {runtime}, batch {batch}, {cores} cores, {args.repeats} repeats",
        flush=True,
    )

    if args.only:
        if args.only == "export":
            measured = in_child("export")
        elif args.only == "precision":
            measured = precision_figures(args, dataset, size, batch, cores, runtime, {})
            print_precision_table(measured)
        else:
            measured = [incremental_figures(figures) for figures in incremental_runs(args, dataset, size, runtime)]
        (HERE / f"results-{args.only}.json").write_text(json.dumps(measured, indent=2))
        print(json.dumps(measured, indent=2))
        print(f"wrote {HERE / f'results-{args.only}.json'}")
        return
    precision = DEFAULTS.precision
    raw = [raw_throughput(size, batch, args.images // cores, cores, runtime, precision) for _ in range(args.repeats)]
    print(f"  raw model: {spread(raw)}", flush=True)
    decode_ms = in_child("decode", size=size, batch=batch, images=args.images)["ms_per_image"]
    pipeline = [
        in_child("pipeline", dataset=dataset, size=size, warm_runs=2, runtime=runtime, precision=precision)
        for _ in range(args.repeats)
    ]
    cold = [p["cold"]["img_s"] for p in pipeline]
    cold_baked = [
        in_child("pipeline", dataset=dataset, size=size, warm_runs=0, runtime=runtime, baked=True, precision=precision)[
            "cold"
        ]["img_s"]
        for _ in range(args.repeats)
    ]
    warm = [w["img_s"] for p in pipeline for w in p["warm"]]
    print(
        f"  pipeline: cold {spread(cold)} cold with a baked model {spread(cold_baked)} warm {spread(warm)}", flush=True
    )
    precisions = precision_figures(args, dataset, size, batch, cores, runtime, {precision: (raw, pipeline)})
    print(f"  int8 vs float32: {precisions}", flush=True)
    before = {}
    if args.before:  # the same measurements on an older version's code, in this same run
        old = code_at(args.before)
        old_runs = [
            in_child("pipeline", code=old, dataset=dataset, size=size, warm_runs=2, runtime=runtime)
            for _ in range(args.repeats)
        ]
        before = {
            "revision": args.before,
            "cold_img_s": spread([p["cold"]["img_s"] for p in old_runs]),
            "warm_img_s": spread([w["img_s"] for p in old_runs for w in p["warm"]]),
            "peak_rss_mb": {key: max(p["peak_rss_mb"][key] for p in old_runs) for key in old_runs[0]["peak_rss_mb"]},
        }
        print(f"  before ({args.before}): {before}", flush=True)
    seeds = (
        [] if args.skip_seeds else [in_child("seeds", dataset=dataset, images=args.images) for _ in range(args.repeats)]
    )
    print(f"  seeds: {spread([s['img_s'] for s in seeds]) if seeds else 'skipped'}", flush=True)

    small = in_child(
        "pipeline", dataset=str(replicate_sample(max(64, args.images // 4))), size=size, warm_runs=0, runtime=runtime
    )
    quarter = max(64, args.images // 4)
    stats_bytes = in_child("stats", datasets=[str(replicate_sample(quarter)), dataset], images_per_task=100)
    print(f"  PCA statistics to the driver: {stats_bytes}", flush=True)
    profile = in_child("profile", dataset=dataset, size=size, runtime=runtime)
    print(f"  where a warm image's core time goes: {profile}", flush=True)
    incremental = incremental_runs(args, dataset, size, runtime)
    print(f"  incremental (10% new) vs full: {incremental}", flush=True)
    export = in_child("export")
    print(f"  phone export: {export}", flush=True)
    sweep = {}
    for entry in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        extra, _, extra_runtime = entry.partition(":")
        extra_runtime = extra_runtime or runtime
        run = in_child("pipeline", dataset=dataset, size=int(extra), warm_runs=1, runtime=extra_runtime)
        extra_raw = raw_throughput(int(extra), batch, args.images // cores, cores, extra_runtime)
        sweep[f"{extra}px {extra_runtime}"] = {
            "raw_img_s": round(extra_raw, 1),
            "pipeline_warm_img_s": round(run["warm"][0]["img_s"], 1),
            "ratio_pipeline_to_raw": round(run["warm"][0]["img_s"] / extra_raw, 3),
            "accuracy": run["accuracy"],
            "k": run["warm"][0]["k"],
        }

    scale = {}
    if args.scale_images:
        big = in_child(
            "pipeline", dataset=str(replicate_sample(args.scale_images)), size=size, warm_runs=2, runtime=runtime
        )
        big_raw = raw_throughput(size, batch, args.scale_images // cores, cores, runtime)
        big_warm = statistics.median(w["img_s"] for w in big["warm"])
        scale = {
            "images": args.scale_images,
            "raw_img_s": round(big_raw, 1),
            "pipeline_warm_img_s": round(big_warm, 1),
            "ratio_pipeline_to_raw": round(big_warm / big_raw, 3),
            "accuracy": big["accuracy"],
            "peak_rss_mb": big["peak_rss_mb"],
            "stage_timings_s_warm": big["warm"][-1]["timings_s"],
        }

    model_ms = cores * 1000 / statistics.median(raw)  # core-ms per image in the raw model
    seeds_img_s = statistics.median([s["img_s"] for s in seeds]) if seeds else None
    results = {
        "images": args.images,
        "image_size": size,
        "runtime": runtime,
        "precision": precision,
        "batch_size": batch,
        "cores": cores,
        "repeats": args.repeats,
        "raw_img_s": spread(raw)["median"],
        "pipeline_cold_img_s": spread(cold)["median"],
        "pipeline_warm_img_s": spread(warm)["median"],
        "pipeline_cold_baked_img_s": spread(cold_baked)["median"],
        "seeds_img_s": seeds_img_s,
        "ratio_pipeline_to_raw": round(statistics.median(warm) / statistics.median(raw), 3),
        # CPU time per image spent beyond the model's own (decode, Spark, I/O, PCA, fixed costs spread)
        "overhead_core_ms_per_image": round(
            cores * 1000 * (1 / statistics.median(warm) - 1 / statistics.median(raw)), 2
        ),
        # Decoding alone (no Spark) against the model's core-ms per image: the ratio a
        # pipeline with zero Spark, I/O and PCA costs would reach.
        "decode_ms_per_image": round(decode_ms, 3),
        "ratio_ceiling_after_decode": round(model_ms / (model_ms + decode_ms), 3),
        "ratio_to_seeds": round(statistics.median(warm) / seeds_img_s, 2) if seeds else None,
        "ratio_cold_to_seeds": round(statistics.median(cold) / seeds_img_s, 2) if seeds else None,
        "accuracy": statistics.median(p["accuracy"] for p in pipeline),
        "seeds_accuracy": statistics.median(s["accuracy"] for s in seeds) if seeds else None,
        "peak_rss_mb": {key: max(p["peak_rss_mb"][key] for p in pipeline) for key in pipeline[0]["peak_rss_mb"]},
        "peak_rss_mb_quarter_input": small["peak_rss_mb"],
        "spread": {
            "raw_img_s": spread(raw),
            "pipeline_cold_img_s": spread(cold),
            "pipeline_cold_baked_img_s": spread(cold_baked),
            "pipeline_warm_img_s": spread(warm),
            **({"seeds_img_s": spread([s["img_s"] for s in seeds])} if seeds else {}),
        },
        "stage_timings_s_warm": pipeline[0]["warm"][-1]["timings_s"],
        # bytes the driver receives for the PCA statistics, at 1/4 and at the full input
        "pca_stats_bytes_to_driver": stats_bytes,
        "size_sweep": sweep,
        "scale": scale,
        "before": before,
        "profile": profile,
        "incremental": [incremental_figures(figures) for figures in incremental],
        "export": export,
        "precisions": precisions,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    print_precision_table(precisions)


def precision_figures(args, dataset: str, size: int, batch: int, cores: int, runtime: str, known: dict) -> dict:
    """The raw model and the warm pipeline at each precision, measured in this one run (`known`:
    precision -> (raw img/s list, pipeline results) already measured); with --input, one cold
    run (the model baked, as in a pod of the image) and one warm run of each on that folder."""
    figures: dict = {}
    for precision in ("float32", "int8"):
        raw, runs = known.get(precision) or (
            [raw_throughput(size, batch, args.images // cores, cores, runtime, precision) for _ in range(args.repeats)],
            [
                in_child("pipeline", dataset=dataset, size=size, warm_runs=2, runtime=runtime, precision=precision)
                for _ in range(args.repeats)
            ],
        )
        figures[precision] = {
            "raw_img_s": spread(raw),
            "pipeline_warm_img_s": spread([w["img_s"] for p in runs for w in p["warm"]]),
            "accuracy_sample_leave_one_out": statistics.median(p["accuracy"] for p in runs),
        }
        if args.input:
            big = in_child(
                "pipeline", dataset=args.input, size=size, warm_runs=1, runtime=runtime, baked=True, precision=precision
            )
            figures[precision]["input"] = {
                "folder": args.input,
                "images": big["cold"]["images"],
                "cold_baked_wall_s": big["cold"]["wall_s"],
                "warm_wall_s": big["warm"][0]["wall_s"],
                "warm_img_s": round(big["warm"][0]["img_s"], 1),
                "stage_timings_s_warm": big["warm"][0]["timings_s"],
                "k": big["warm"][0]["k"],
                "accuracy": big["accuracy"],
                "peak_rss_mb": big["peak_rss_mb"],
            }
    int8, float32 = figures["int8"], figures["float32"]
    figures["ratio_int8_pipeline_to_float32_raw"] = round(
        int8["pipeline_warm_img_s"]["median"] / float32["raw_img_s"]["median"], 3
    )
    figures["ratio_int8_raw_to_float32_raw"] = round(int8["raw_img_s"]["median"] / float32["raw_img_s"]["median"], 3)
    figures["ratio_int8_pipeline_to_float32_pipeline"] = round(
        int8["pipeline_warm_img_s"]["median"] / float32["pipeline_warm_img_s"]["median"], 3
    )
    if args.input:  # the same ratio where the run's fixed costs (~1 s: start, PCA, write) weigh little
        figures["ratio_int8_pipeline_to_float32_raw_on_input"] = round(
            int8["input"]["warm_img_s"] / float32["raw_img_s"]["median"], 3
        )
    return figures


def print_precision_table(figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="int8 vs float32 (one run; medians, min-max)")
    for column in ("measure", "float32", "int8", "int8 / float32"):
        table.add_column(column)

    def cell(s: dict) -> str:
        return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"

    int8, float32 = figures["int8"], figures["float32"]
    table.add_row(
        "raw model, img/s",
        cell(float32["raw_img_s"]),
        cell(int8["raw_img_s"]),
        f"{figures['ratio_int8_raw_to_float32_raw']:.2f}x",
    )
    table.add_row(
        "warm pipeline (no head), img/s",
        cell(float32["pipeline_warm_img_s"]),
        cell(int8["pipeline_warm_img_s"]),
        f"{figures['ratio_int8_pipeline_to_float32_pipeline']:.2f}x",
    )
    table.add_row(
        "int8 warm pipeline / float32 raw model", "", f"{figures['ratio_int8_pipeline_to_float32_raw']:.2f}x", ""
    )
    if "input" in int8:
        a, b = float32["input"], int8["input"]
        table.add_row(
            f"{a['images']} images, cold (baked model), s",
            f"{a['cold_baked_wall_s']:.1f}",
            f"{b['cold_baked_wall_s']:.1f}",
            f"{a['cold_baked_wall_s'] / b['cold_baked_wall_s']:.2f}x faster",
        )
        table.add_row(
            f"{a['images']} images, warm, s",
            f"{a['warm_wall_s']:.1f}",
            f"{b['warm_wall_s']:.1f}",
            f"{a['warm_wall_s'] / b['warm_wall_s']:.2f}x faster",
        )
        table.add_row(
            f"int8 warm pipeline on {a['images']} images / float32 raw model",
            "",
            f"{figures['ratio_int8_pipeline_to_float32_raw_on_input']:.2f}x",
            "",
        )
        table.add_row(
            f"1-NN top-1, {a['accuracy']['test_images']} held out ({a['accuracy']['split']})",
            f"{a['accuracy']['accuracy']:.4f}",
            f"{b['accuracy']['accuracy']:.4f}",
            f"{100 * (b['accuracy']['accuracy'] - a['accuracy']['accuracy']):+.2f} points",
        )
    Console().print(table)


def incremental_runs(args, dataset: str, size: int, runtime: str) -> list[dict]:
    """measure_incremental at --images, and at --scale-images where given."""
    datasets = [dataset, *([str(replicate_sample(args.scale_images))] if args.scale_images else [])]
    return [
        in_child("incremental", dataset=data, size=size, runtime=runtime, repeats=args.repeats) for data in datasets
    ]


def incremental_figures(measured: dict) -> dict:
    full, incremental, reuse_model = (
        statistics.median(measured[key]) for key in ("full_s", "incremental_s", "reuse_model_s")
    )
    return {
        **measured,
        "full_s": spread(measured["full_s"]),
        "incremental_s": spread(measured["incremental_s"]),
        "reuse_model_s": spread(measured["reuse_model_s"]),
        "ratio_incremental_to_full": round(incremental / full, 3),
        "ratio_reuse_model_to_full": round(reuse_model / full, 3),
    }


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Fruits! benchmark: {results['images']} images, {results['image_size']}px {results['runtime']}, "
        f"{results['cores']} cores, median of {results['repeats']} (min-max)"
    )
    for column in ("measure", "img/s", "spread", "accuracy (1-NN)"):
        table.add_column(column)
    spreads = results["spread"]

    def row(name, key, accuracy=""):
        s = spreads[key]
        table.add_row(name, f"{s['median']:.1f}", f"{s['min']:.1f}-{s['max']:.1f}", accuracy)

    row("raw model (ceiling)", "raw_img_s")
    row("pipeline, cold", "pipeline_cold_img_s", f"{results['accuracy']:.3f}")
    row("pipeline, cold, baked TFLite", "pipeline_cold_baked_img_s")
    row("pipeline, warm", "pipeline_warm_img_s", f"{results['accuracy']:.3f}")
    if results["seeds_img_s"]:
        row("seeds' approach (224px)", "seeds_img_s", f"{results['seeds_accuracy']:.3f}")
    table.add_row(
        "pipeline / raw",
        f"{results['ratio_pipeline_to_raw']:.2f}x",
        f"{results['overhead_core_ms_per_image']} core-ms/image beyond the model",
        "",
    )
    table.add_row(
        "decode + resize + normalise alone",
        f"{results['decode_ms_per_image']} ms/image",
        f"caps pipeline / raw at {results['ratio_ceiling_after_decode']:.2f}x",
        "",
    )
    if results["seeds_img_s"]:
        table.add_row(
            "pipeline / seeds",
            f"{results['ratio_to_seeds']:.1f}x warm, {results['ratio_cold_to_seeds']:.1f}x cold",
            "",
            "",
        )
    if before := results["before"]:
        name = f"before ({before['revision']})"
        for label, key in (("cold", "cold_img_s"), ("warm", "warm_img_s")):
            old, new = before[key]["median"], spreads[f"pipeline_{key}"]["median"]
            table.add_row(
                f"{name}, {label}",
                f"{old:.1f}",
                f"{before[key]['min']:.1f}-{before[key]['max']:.1f}",
                f"now {new / old:.2f}x",
            )
        table.add_row(
            f"{name}, peak RSS",
            f"driver+JVM {before['peak_rss_mb']['driver_and_jvm']} MB",
            f"worker {before['peak_rss_mb']['python_worker']} MB",
            "",
        )
    rss = results["peak_rss_mb"]
    table.add_row("peak RSS", f"driver+JVM {rss['driver_and_jvm']} MB", f"worker {rss['python_worker']} MB", "")
    quarter = results["peak_rss_mb_quarter_input"]
    table.add_row(
        "peak RSS, 1/4 input", f"driver+JVM {quarter['driver_and_jvm']} MB", f"worker {quarter['python_worker']} MB", ""
    )
    (small_images, small), (full_images, full) = results["pca_stats_bytes_to_driver"].items()
    table.add_row(
        "PCA statistics to the driver",
        f"{small['bytes'] / 2**20:.1f} / {full['bytes'] / 2**20:.1f} MiB",
        f"{small_images} / {full_images} images, {small['tasks']} / {full['tasks']} tasks",
        "",
    )
    for inc in results.get("incremental", []):
        table.add_row(
            f"full run, {inc['images']} images (job wall)",
            f"{inc['full_s']['median']:.2f} s",
            f"{inc['full_s']['min']:.2f}-{inc['full_s']['max']:.2f} s",
            "",
        )
        table.add_row(
            f"incremental, {inc['new']} new ({inc['reused']} reused)",
            f"{inc['incremental_s']['median']:.2f} s",
            f"{inc['ratio_incremental_to_full']:.2f}x the full run",
            "",
        )
        table.add_row(
            "incremental --reuse-model",
            f"{inc['reuse_model_s']['median']:.2f} s",
            f"{inc['ratio_reuse_model_to_full']:.2f}x the full run",
            "",
        )
    if export := results.get("export"):
        for quantize, figures in export["variants"].items():
            table.add_row(
                f"phone export, {quantize}: featurizer / classifier",
                f"{figures['bytes']['featurizer.tflite'] / 1e6:.1f} / "
                f"{figures['bytes']['classifier.tflite'] / 1e6:.1f} MB",
                f"{figures['ms_per_image_one_thread']['featurizer.tflite']} / "
                f"{figures['ms_per_image_one_thread']['classifier.tflite']} ms a photo, 1 thread",
                f"top-1 {figures['top1']:.3f}",
            )
        table.add_row("pipeline, same run", f"{export['pipeline_core_ms_per_image']} core-ms / image", "", "")
    for size, figures in results["size_sweep"].items():
        table.add_row(
            f"{size}: raw / warm",
            f"{figures['raw_img_s']} / {figures['pipeline_warm_img_s']}",
            f"{figures['ratio_pipeline_to_raw']:.2f}x",
            f"{figures['accuracy']:.3f}",
        )
    if scale := results["scale"]:
        table.add_row(
            f"{scale['images']} images: raw / warm",
            f"{scale['raw_img_s']} / {scale['pipeline_warm_img_s']}",
            f"{scale['ratio_pipeline_to_raw']:.2f}x",
            f"{scale['accuracy']:.3f}",
        )
        table.add_row(
            f"peak RSS, {scale['images']} images",
            f"driver+JVM {scale['peak_rss_mb']['driver_and_jvm']} MB",
            f"worker {scale['peak_rss_mb']['python_worker']} MB",
            "",
        )
    Console().print(table)
    profile = results["profile"]
    parts = Table(
        title=f"Where a warm image's core time goes ({profile['images']} images, one warm run, "
        "py-spy on the Python workers, /proc for the JVM and driver)"
    )
    for column in ("part", "core-ms per image", "share"):
        parts.add_column(column)
    total = sum(profile["core_ms_per_image"].values())
    for part, value in profile["core_ms_per_image"].items():
        parts.add_row(part, f"{value:.3f}", f"{value / total:.0%}")
    parts.add_row("total", f"{total:.3f}", "")
    Console().print(parts)
    print(f"wrote {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
