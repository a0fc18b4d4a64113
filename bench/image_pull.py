"""What each image costs a node that has never seen it: its size, the time to bring its layers
into an empty container store, and the time of a tiny run in it.

Pull: `ENGINE save IMAGE | ENGINE --root EMPTY load`, the median of --repeats, each into a store
of its own that starts empty: the layers are unpacked and stored as a pull would, without the
registry's network transfer and gzip (a registry sends a compressed stream; this one is the
uncompressed archive, whose size is reported). For the -tf image, also into a store that
already holds the lean image: the archive still streams every layer, but only the -tf image's
own are unpacked, as a pull on a node that has run the lean image fetches only those.
Run: `ENGINE run` of spark-submit of the job (local[2], no network, read-only root, uid 185)
on a few sample images with --k 2, start to exit: the JVM's and Python's start, the baked
model's load, the featurize tasks and the fit; the median of --repeats after one untimed run.

    python bench/image_pull.py --engine podman --images fruits-pipeline:0.1.0 fruits-pipeline:0.1.0-tf
"""

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "fruits360-sample"
CLASSES, PER_CLASS = 2, 6
JOB = ["/opt/spark/bin/spark-submit", "--master", "local[2]", "--conf", "spark.ui.enabled=false"]
JOB += ["/opt/fruits/job/main.py", "--input", "/data", "--output", "/tmp/out", "--k", "2"]
POD = ["--user", "185:185", "--read-only", "--tmpfs", "/tmp:rw,exec,size=1g", "--cap-drop=ALL", "--network=none"]
POD += ["--security-opt", "no-new-privileges", "-e", "SPARK_LOCAL_IP=127.0.0.1"]


def image_size(engine: str, image: str) -> int:
    done = subprocess.run([engine, "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{engine} has no image {image}: build it first (make image image-tf).")
    return int(done.stdout.strip())


class EmptyStore:
    """A container store of its own (root and runroot in a temporary folder): a fresh node's."""

    def __init__(self, engine: str, scratch: Path):
        self.engine, self.folder = engine, Path(tempfile.mkdtemp(prefix="store-", dir=scratch))
        self.run = Path(tempfile.mkdtemp(prefix="run-"))  # podman wants a runroot of at most 50 characters
        self.command = [engine, "--root", str(self.folder), "--runroot", str(self.run)]

    def load(self, image: str) -> tuple[float, int]:
        """`engine save image | engine --root here load`: seconds, and bytes streamed."""
        started = time.perf_counter()
        save = subprocess.Popen([self.engine, "save", image], stdout=subprocess.PIPE)
        load = subprocess.Popen([*self.command, "load"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert save.stdout is not None and load.stdin is not None
        streamed = 0
        try:
            while block := save.stdout.read(1 << 20):
                load.stdin.write(block)
                streamed += len(block)
            load.stdin.close()
        except BrokenPipeError:
            save.kill()
        if save.wait() != 0 or load.wait() != 0:
            raise SystemExit(f"save | load of {image} failed")
        return time.perf_counter() - started, streamed

    def close(self) -> None:
        for folder in (self.folder, self.run):  # nothing is mounted: load only stores layers
            shutil.rmtree(folder, ignore_errors=True)


def timed_load(engine: str, scratch: Path, image: str, already: str | None = None) -> tuple[float, int]:
    store = EmptyStore(engine, scratch)
    try:
        if already:
            store.load(already)
        return store.load(image)
    finally:
        store.close()


def tiny_input(scratch: Path) -> Path:
    if not SAMPLE.is_dir():
        raise SystemExit(f"{SAMPLE} is missing: the benchmark runs on the shared sample beside the project.")
    folder = scratch / "input"
    for label in sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())[:CLASSES]:
        (folder / label).mkdir(parents=True)
        for photo in sorted((SAMPLE / label).glob("*.jpg"))[:PER_CLASS]:
            shutil.copy(photo, folder / label / photo.name)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def timed_run(engine: str, image: str, data: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([engine, "run", "--rm", *POD, "-v", f"{data}:/data:ro", image, *JOB], capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"the tiny run in {image} failed:\n{done.stderr.decode()[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--images", nargs=2, required=True, metavar=("LEAN", "TF"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args()
    lean, tf = args.images
    (ROOT / ".cache").mkdir(exist_ok=True)
    figures: dict = {"engine": args.engine, "repeats": args.repeats, "images": {}}
    with tempfile.TemporaryDirectory(prefix="bench-image-", dir=ROOT / ".cache") as folder:
        scratch = Path(folder)
        data = tiny_input(scratch)
        # Round robin, so that a noisy neighbour or the disk's write-back after a load slows
        # every figure alike; the runs first, each image's first run untimed (a cold page cache).
        runs: dict[str, list[float]] = {lean: [], tf: []}
        for image in runs:
            timed_run(args.engine, image, data)
        for _ in range(args.repeats):
            for image in runs:
                runs[image].append(timed_run(args.engine, image, data))
        loads: dict[str, list[tuple[float, int]]] = {lean: [], tf: [], "tf after lean": []}
        for _ in range(args.repeats):
            loads[lean].append(timed_load(args.engine, scratch, lean))
            loads[tf].append(timed_load(args.engine, scratch, tf))
            loads["tf after lean"].append(timed_load(args.engine, scratch, tf, already=lean))
        for image in (lean, tf):
            figures["images"][image] = {
                "size_bytes": image_size(args.engine, image),
                "archive_bytes": loads[image][0][1],
                "load_s": round(statistics.median(s for s, _ in loads[image]), 1),
                "tiny_run_s": round(statistics.median(runs[image]), 1),
            }
        figures["images"][tf]["load_after_lean_s"] = round(statistics.median(s for s, _ in loads["tf after lean"]), 1)
        figures["images"][tf]["own_layers_bytes"] = (
            figures["images"][tf]["size_bytes"] - figures["images"][lean]["size_bytes"]
        )
    figures["tiny_run"] = f"{CLASSES * PER_CLASS} images, --k 2, local[2], default settings (LiteRT, int8, baked model)"
    print(f"{'image':<34} {'size':>8} {'archive':>8} {'save|load':>10} {'tiny run':>9}")
    for image, row in figures["images"].items():
        print(
            f"{image:<34} {row['size_bytes'] / 1e9:>6.2f}GB {row['archive_bytes'] / 1e9:>6.2f}GB "
            f"{row['load_s']:>9.1f}s {row['tiny_run_s']:>8.1f}s"
        )
    row = figures["images"][tf]
    print(f"{tf} into a store holding {lean}: {row['load_after_lean_s']:.1f} s")
    print(f"  (its own layers: {row['own_layers_bytes'] / 1e9:.2f} GB)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
