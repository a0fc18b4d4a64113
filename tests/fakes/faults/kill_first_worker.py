"""A Spark Python worker daemon for the fault tests: the job's own daemon (fruits.featurize.spark_worker),
except that the first worker to start a task, machine-wide, kills itself with SIGKILL, as the
OOM killer would. "First" is decided by creating the file $FRUITS_TEST_KILL_MARKER.

    spark.python.daemon.module=kill_first_worker   (with this folder on PYTHONPATH)
"""

import os
import signal

import pyspark.daemon as daemon

import fruits.featurize.spark_worker  # noqa: F401 - the job's daemon patches, as in a real run

_run_task = daemon.worker_main


def _first_task_dies(infile, outfile):
    try:
        os.close(os.open(os.environ["FRUITS_TEST_KILL_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return _run_task(infile, outfile)
    os.kill(os.getpid(), signal.SIGKILL)


daemon.worker_main = _first_task_dies

if __name__ == "__main__":
    daemon.manager()
