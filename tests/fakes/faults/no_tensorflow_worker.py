"""A Spark Python worker daemon for the lean-executor tests: the job's own daemon
(fruits.featurize.spark_worker), except that importing TensorFlow or Keras in a worker fails the task.

    spark.python.daemon.module=no_tensorflow_worker   (with this folder on PYTHONPATH)
"""

import sys
from importlib.abc import MetaPathFinder

import pyspark.daemon as daemon

import fruits.featurize.spark_worker  # noqa: F401 - the job's daemon patches, as in a real run

FORBIDDEN = ("tensorflow", "keras", "tf_keras")


class _NoTensorFlow(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"a Spark Python worker imported {name!r}: workers must run on LiteRT alone")
        return None


sys.meta_path.insert(0, _NoTensorFlow())

if __name__ == "__main__":
    daemon.manager()
