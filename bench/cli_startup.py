"""How long fruitsctl takes to start: the median wall time of commands that do little work,
`list` and `status` against the fake Kubernetes API of the tests (a real HTTP server).

    python bench/cli_startup.py [--runs N]     # target: <= 0.3 s median each
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_kube import FakeKube  # noqa: E402

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
            "apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": "fr-a", "namespace": "default", "creationTimestamp": "2026-12-01T10:00:00Z",
                         "labels": {"app.kubernetes.io/name": "fruits-pipeline"}},
            "status": {"applicationState": {"state": "COMPLETED"}}}
        commands = (["--help"], ["status", "--help"], ["list", "--kubeconfig", config],
                    ["status", "fr-a", "--kubeconfig", config], ["run", "--help"])
        figures = {}
        for command in commands:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run([FRUITSCTL, *command], check=True, capture_output=True)
                times.append(time.perf_counter() - started)
            shown = " ".join(command[:command.index("--kubeconfig")] if "--kubeconfig" in command else command)
            median = statistics.median(times)
            figures[shown] = {"median_s": round(median, 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3)}
            print(f"fruitsctl {shown:<14} median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}, "
                  f"{args.runs} runs){'' if median <= TARGET_S else f'  above the {TARGET_S} s target'}")
    fake.stop()
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "target_s": TARGET_S, "commands": figures}, indent=2))


if __name__ == "__main__":
    main()
