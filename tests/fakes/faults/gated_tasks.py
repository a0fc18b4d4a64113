"""A Spark Python worker daemon for the fault tests: the job's own daemon, except that every
task waits while the file $FRUITS_TEST_GATE exists (at most 300 s), so a test can hold a run
mid-featurize for as long as it needs. The first task to wait creates $FRUITS_TEST_GATE.reached:
the run has done everything it does before its first Python task.

    spark.python.daemon.module=gated_tasks   (with this folder on PYTHONPATH)
"""

import os
import time

import pyspark.daemon as daemon

import fruits.featurize.spark_worker  # noqa: F401 - the job's daemon patches, as in a real run

_run_task = daemon.worker_main


def _gated(infile, outfile):
    deadline, gate = time.monotonic() + 300, os.environ["FRUITS_TEST_GATE"]
    if os.path.exists(gate):
        open(f"{gate}.reached", "a").close()
    while os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _run_task(infile, outfile)


daemon.worker_main = _gated

if __name__ == "__main__":
    daemon.manager()
