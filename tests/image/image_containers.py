"""Helpers and fixtures of `make image-test`: the built images, in real containers (podman or
docker), against a local S3 server (moto on 127.0.0.1, reached with host networking). Not part
of `make test`: it needs the images (`make image image-tf`), named by $FRUITS_IMAGE (the lean
one) and $FRUITS_TF_IMAGE (the -tf one).

(Not a conftest.py: the tests import helpers from the suite's own conftest by module name.)"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fruits.cli.main import app

BUCKET = "fruits-image"
REPORT = Path(__file__).resolve().parents[2] / ".cache" / "image-report.json"
_report: dict = {}


class Containers:
    """Runs the image as pods and nodes would: uid 185, read-only root, no capabilities."""

    def __init__(self, engine: str, image: str):
        self.engine, self.image = engine, image
        self.started: list[str] = []

    def hardened(self, *, tmp: str | None = None, network: str = "host") -> list[str]:
        """A pod's restrictions: the Spark user, a read-only root with a writable /tmp only,
        every capability dropped, no privilege escalation."""
        scratch = ["-v", f"{tmp}:/tmp"] if tmp else ["--tmpfs", "/tmp:rw,exec,size=4g"]
        return [
            "--user",
            "185:185",
            "--read-only",
            *scratch,
            "--cap-drop=ALL",
            "--security-opt",
            "no-new-privileges",
            f"--network={network}",
        ]

    def run(self, *args: str, options=(), timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.engine, "run", "--rm", *options, self.image, *args], capture_output=True, text=True, timeout=timeout
        )

    def start(self, name: str, *args: str, options=()) -> str:
        """A long-running container (a Spark master or worker); removed at the end."""
        full = f"fruits-test-{name}-{uuid.uuid4().hex[:6]}"
        subprocess.run(
            [self.engine, "run", "-d", "--name", full, *options, self.image, *args],
            check=True,
            capture_output=True,
            text=True,
        )
        self.started.append(full)
        return full

    def logs(self, name: str) -> str:
        done = subprocess.run([self.engine, "logs", name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def running(self, name: str) -> bool:
        done = subprocess.run(
            [self.engine, "inspect", name, "--format", "{{.State.Running}}"], capture_output=True, text=True
        )
        return done.stdout.strip() == "true"

    def wait(self, name: str, timeout: int = 900) -> int:
        """The exit code of a started container, once it has exited."""
        done = subprocess.run([self.engine, "wait", name], capture_output=True, text=True, timeout=timeout, check=True)
        return int(done.stdout.strip())

    def pause(self, name: str) -> bool:
        """Every process of the container frozen (cgroup freezer): a task it runs cannot finish.
        False when the freezer gave up (the runtime thaws the container again): seen once
        while a worker's processes were starting."""
        return subprocess.run([self.engine, "pause", name], capture_output=True, text=True).returncode == 0

    def unpause(self, name: str) -> None:
        subprocess.run([self.engine, "unpause", name], capture_output=True, text=True, check=True)

    def signal(self, name: str, signal: str = "KILL") -> None:
        """A signal to the container's main process (SIGKILL: a node gone at once)."""
        subprocess.run([self.engine, "kill", "--signal", signal, name], capture_output=True, text=True, check=True)

    def stop(self, name: str, grace: int) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds if it is still running."""
        subprocess.run([self.engine, "stop", "--time", str(grace), name], capture_output=True, text=True, check=True)

    def stop_all(self) -> None:
        for name in self.started:
            subprocess.run([self.engine, "rm", "-f", name], capture_output=True)


def _containers_of(variable: str, target: str):
    image, engine = os.environ.get(variable), os.environ.get("FRUITS_CONTAINER") or "podman"
    if not image:
        pytest.fail(f"Set {variable} to the image to test (make image-test does).", pytrace=False)
    if subprocess.run([engine, "image", "inspect", image], capture_output=True).returncode != 0:
        pytest.fail(f"Image {image} not found by {engine}: build it first (make {target}).", pytrace=False)
    return Containers(engine, image)


@pytest.fixture(scope="session")
def containers():
    """The lean image: LiteRT and the baked models, no TensorFlow."""
    runner = _containers_of("FRUITS_IMAGE", "image")
    yield runner
    runner.stop_all()


@pytest.fixture(scope="session")
def tf_containers():
    """The -tf image: the lean one plus TensorFlow, Keras and the ImageNet weights."""
    runner = _containers_of("FRUITS_TF_IMAGE", "image-tf")
    yield runner
    runner.stop_all()


@pytest.fixture(scope="session")
def s3_sample(s3_server, sample_dir):
    """The Fruits-360 sample in the local S3 server, uploaded with fruitsctl upload."""
    result = CliRunner().invoke(app, ["upload", str(sample_dir), f"s3://{BUCKET}/sample", "--create-bucket"])
    assert result.exit_code == 0, result.output
    return s3_server


def s3_job_env() -> list[str]:
    """The static keys of the local S3 server, as a Secret would give them to pods."""
    return [
        arg
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
        for arg in ("-e", f"{name}={os.environ[name]}")
    ]


def record(key: str, value) -> None:
    """A figure for the image report (.cache/image-report.json, printed by make image-test)."""
    _report[key] = value
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(_report, indent=2))
