"""How long fruitsctl takes to start: the median wall time of commands that do little work,
`list` and `status` against the fake Kubernetes API of the tests (a real HTTP server).

    python bench/cli_startup.py [--runs N]     # the median of N runs of each command
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_kube import FakeKube

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
TARGET_S = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args()
    fake = FakeKube()
    with tempfile.TemporaryDirectory() as scratch:
        config = fake.kubeconfig(Path(scratch) / "kubeconfig")
        fake.apps[("default", "fr-a")] = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {
                "name": "fr-a",
                "namespace": "default",
                "creationTimestamp": "2026-12-01T10:00:00Z",
                "labels": {"app.kubernetes.io/name": "fruits-pipeline"},
            },
            "status": {"applicationState": {"state": "COMPLETED"}},
        }
        commands = (
            ["--help"],
            ["status", "--help"],
            ["list", "--kubeconfig", config],
            ["status", "fr-a", "--kubeconfig", config],
            ["run", "--help"],
        )
        walls = {tuple(c): [] for c in commands}
        cpus = {tuple(c): [] for c in commands}
        for _ in range(args.runs):  # round robin: a noisy neighbour slows every command alike
            for command in commands:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run([FRUITSCTL, *command], check=True, capture_output=True)
                walls[tuple(command)].append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus[tuple(command)].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        figures = {}
        print(f"{'command':<24} {'wall median':>11} {'(min-max)':>12} {'CPU median':>11}")
        for command in commands:
            shown = " ".join(command[: command.index("--kubeconfig")] if "--kubeconfig" in command else command)
            wall, cpu = walls[tuple(command)], cpus[tuple(command)]
            figures[shown] = {
                "wall_median_s": round(statistics.median(wall), 3),
                "wall_min_s": round(min(wall), 3),
                "wall_max_s": round(max(wall), 3),
                "cpu_median_s": round(statistics.median(cpu), 3),
            }
            flag = "" if statistics.median(wall) <= TARGET_S else f"  above the {TARGET_S} s target"
            print(
                f"fruitsctl {shown:<14} {statistics.median(wall):>10.2f}s {min(wall):>5.2f}-{max(wall):.2f}s "
                f"{statistics.median(cpu):>10.2f}s{flag}"
            )
    fake.stop()
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "target_s": TARGET_S, "commands": figures}, indent=2))


if __name__ == "__main__":
    main()
