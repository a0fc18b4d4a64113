"""The Python worker daemon of the job's Spark executors (spark.python.daemon.module):
pyspark's own, without a per-task cost that Python 3.10 and 3.11 add.

pyspark.worker calls importlib.invalidate_caches() at the start of every task. Before
Python 3.12 that makes every zipimporter re-read its whole archive at once (CPython
gh-103200), and Spark puts pyspark.zip and py4j's zip on every worker's path: 0.1-0.2 s
of each task here, before it reads a row. Spark 4.2 stops calling it per task
(SPARK-54744); Spark 3.5 does not. The archives do not change under a running worker,
so their importers skip the re-read (as Python 3.12's lazy invalidation would, until
the next import from them).
"""

import sys
import zipimport


def _keep_directory(self) -> None:
    """zipimporter.invalidate_caches for archives that never change under a worker."""


if sys.version_info < (3, 12):
    zipimport.zipimporter.invalidate_caches = _keep_directory  # type: ignore[method-assign]  # the deliberate patch

if __name__ == "__main__":
    from pyspark.daemon import manager

    manager()
