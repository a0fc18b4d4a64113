"""The image's /opt/decom.sh, the preStop hook Spark gives executor pods when decommissioning is
on: it signals the executor JVM and waits for it to leave (a stand-in executor here)."""

import time

import pytest
from image_containers import containers  # noqa: F401 - fixture

pytestmark = pytest.mark.image

# A process named as an executor JVM; the name is split so that this shell's own command line
# does not match what decom.sh looks for.
STAND_IN = (
    'n=ExecutorBack; (exec -a "java -cp /opt/spark/jars/* org.apache.spark.executor.Coarse${n}end" sleep 60) & '
    "sleep 1; /opt/decom.sh; echo exit=$?"
)


def test_decom_sh_signals_the_executor_and_waits_for_it_to_leave(containers):
    started = time.monotonic()
    done = containers.run("bash", "-c", STAND_IN, options=containers.hardened(network="none"), timeout=120)
    waited = time.monotonic() - started
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "decommissioning the executor" in printed and "the executor has exited" in printed, printed
    assert "exit=0" in printed
    assert waited < 50, f"decom.sh did not see the executor leave on SIGPWR ({waited:.0f} s)"


def test_decom_sh_without_an_executor_does_not_hold_the_pod(containers):
    done = containers.run("/opt/decom.sh", options=containers.hardened(network="none"), timeout=60)
    assert done.returncode == 0 and "no Spark executor" in done.stderr, done.stdout + done.stderr
