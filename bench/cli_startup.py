"""How long fruitsctl takes to start: the median wall time of a few commands that do no work.

    python bench/cli_startup.py [--runs N]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
COMMANDS = (["--help"], ["status", "--help"], ["run", "--help"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for command in COMMANDS:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([FRUITSCTL, *command], check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        print(f"fruitsctl {' '.join(command):<14} median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
