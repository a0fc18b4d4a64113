"""fruitsctl starts without the job's heavy libraries: each command imports what it runs."""

import json
import subprocess
import sys

HEAVY = ("pyspark", "tensorflow", "keras", "matplotlib", "pyarrow", "kubernetes", "boto3", "numpy")


def test_starting_fruitsctl_imports_none_of_the_jobs_heavy_libraries():
    probe = (
        f"import sys, json; import fruits.cli.main; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_help_lists_every_command_without_importing_them():
    done = subprocess.run(
        [sys.executable, "-c", "from fruits.cli.main import main; main()", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for command in ("run", "transform", "export", "report", "evaluate", "upload", "render", "submit", "status"):
        assert f" {command} " in done.stdout
