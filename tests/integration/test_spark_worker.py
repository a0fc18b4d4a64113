"""The Python worker daemon the job's Spark sessions use (fruits.featurize.spark_worker)."""

import sys


def test_python_workers_run_our_daemon_and_skip_the_zip_reread(spark):
    """fruits.featurize.spark_worker is the workers' daemon (spark.python.daemon.module): the per-task
    importlib.invalidate_caches() no longer re-reads pyspark's zip, and imports still work."""

    def probe(_):
        import importlib
        import zipimport

        importlib.invalidate_caches()  # what pyspark.worker does before every task
        import pyspark.ml.feature  # noqa: F401 - a module from the zip imports after it

        return [zipimport.zipimporter.invalidate_caches.__qualname__]

    expected = "_keep_directory" if sys.version_info < (3, 12) else "zipimporter.invalidate_caches"
    assert spark.sparkContext.parallelize([0, 1], 2).mapPartitions(probe).collect() == [expected] * 2
