"""Debian's real Prometheus and Pushgateway, started on 127.0.0.1 for a test module: the
Pushgateway the job pushes to, and a Prometheus scraping it every second with the shipped
alert rules loaded, read back through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "fruits-alerts.yaml"


def binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} is missing: apt-get install prometheus prometheus-pushgateway (.ci/run installs them).",
            pytrace=False,
        )
    return found


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} was not ready within {timeout} s")


@dataclass
class Monitoring:
    pushgateway: str  # http://127.0.0.1:PORT
    prometheus: str

    def api(self, path: str, **query: str) -> Any:
        url = f"{self.prometheus}/api/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> dict[str, float]:
        """An instant query's samples, keyed by their labels' `key=value,...` text (no __name__)."""
        samples = self.api("query", query=expression)["result"]
        return {
            ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__"): float(s["value"][1])
            for s in samples
        }

    def eventually(self, read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30) -> Any:
        """`read()` once `check` holds for it (Prometheus scrapes and evaluates every second)."""
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if check(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.25)


def start_monitoring(folder: Path, free_port: Callable[[], int]) -> tuple[Monitoring, list[subprocess.Popen]]:
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = subprocess.Popen(
        [
            binary("prometheus-pushgateway"),
            f"--web.listen-address=127.0.0.1:{gateway_port}",
            f"--persistence.file={folder / 'pushgateway.data'}",  # Debian's default is shared
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = folder / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,  # the pushed job and output labels, not the scrape's
                        "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}],
                    }
                ],
            }
        )
    )
    prometheus = subprocess.Popen(
        [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes = [gateway, prometheus]
    monitoring = Monitoring(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{prometheus_port}")
    try:
        wait_ready(f"{monitoring.pushgateway}/-/ready", gateway)
        wait_ready(f"{monitoring.prometheus}/-/ready", prometheus)
    except BaseException:
        stop(processes)
        raise
    return monitoring, processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
