"""The one place a SparkSession is built, for local runs and inside spark-submit."""

import os
import re
import sys
from contextlib import contextmanager

from typing import TYPE_CHECKING

from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.io.s3_settings import S3Settings, is_s3

if TYPE_CHECKING:  # pyspark is imported where a session is built: the CLI starts without it
    from pyspark.sql import SparkSession

# What the job needs whatever the cluster: Arrow for the pandas UDF, reused Python
# workers (so the model cache survives between tasks), quiet TensorFlow in workers, and
# our worker daemon (fruits.inference.spark_worker: pyspark's, minus 0.1-0.2 s per task).
JOB_SPARK_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
    # Arrow's buffers in the Python workers on malloc instead of jemalloc, which keeps freed
    # memory: worker peaks 347-361 MB against 370-377 on 2 592 images (two runs each).
    "spark.executorEnv.ARROW_DEFAULT_MEMORY_POOL": "system",
    "spark.python.daemon.module": "fruits.inference.spark_worker",
}

# Local mode only (the embedded default of `fruitsctl run`).
LOCAL_SPARK_CONF = {
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.showConsoleProgress": "false",  # fruitsctl draws its own progress
    # The driver JVM only moves bytes here (the CNN runs in Python workers): its C2 JIT
    # compiler spent ~3 CPU s per run competing with the model for the cores; C1 code is
    # plenty for this JVM's share of the work.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.executor.heartbeatInterval": "2s",  # live images-read counts for the progress bar
}


# Local mode runs each task once unless the master says otherwise: local[N,R] allows R
# attempts, so a Python worker killed (by the OOM killer, say) costs a retry, not the run.
# 4 attempts, as spark.task.maxFailures gives a cluster.
LOCAL_MASTER = "local[*,4]"


def local_spark(master: str = LOCAL_MASTER, extra_conf: dict[str, str] | None = None,
                job: JobConfig | None = None) -> "SparkSession":
    """A local-mode session whose Python workers run this interpreter; with the job's
    settings, its S3 settings are in place before the SparkContext starts."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("fruits").master(master)
    conf = {**JOB_SPARK_CONF, **LOCAL_SPARK_CONF}
    from fruits.io.s3a_jars import verified_jars  # tarfile, hashlib: not at fruitsctl's start

    if jars := verified_jars():  # the S3A connector, when `make jars` fetched it
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
    extra_conf = extra_conf or {}
    if job:
        conf.update(s3a_session_conf(job, extra_conf.get("spark.eventLog.dir")))
    for key, value in {**conf, **extra_conf}.items():
        builder = builder.config(key, value)
    spark = _start(builder, job)
    # Failed tasks are reported by fruitsctl itself (one sentence for a user error, the
    # exception otherwise); Spark's own log of them is a wall of Java stack traces.
    spark.sparkContext.setLogLevel("OFF")
    return spark


def submitted_spark(job: JobConfig) -> "SparkSession":
    """The session spark-submit set up (master and resources come from its conf), with the
    job's S3 settings in place before the SparkContext starts (on a cluster the job reads and
    writes S3, so they are there for an s3a:// event log too)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("fruits")
    conf = {**JOB_SPARK_CONF, **s3a_session_conf(job)}
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = _start(builder, job)
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _start(builder, job: JobConfig | None) -> "SparkSession":
    """The session, or one sentence when what Spark opens at start, its event log directory,
    cannot be used (missing, or denied to the job's credentials)."""
    try:
        return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - only the event log's failures become sentences
        text = str(exc)
        where = re.search(r"\b(s3a?|s3n|file|hdfs)://[^\s'\"]+", text)
        if "EventLog" not in text or where is None:
            raise
        directory = where.group(0)
        if "FileNotFoundException" in text:
            raise UserError(f"Spark's event log directory {directory} does not exist: create it first (on S3: aws "
                            "s3api put-object --bucket BUCKET --key PREFIX/), or leave the event log out.") from None
        message = S3Settings.of(job).explain(text, directory) if job else None
        if message is None:
            raise
        raise UserError(f"Spark cannot open its event log directory: {message}") from None


def s3a_session_conf(job: JobConfig, event_log_dir: str | None = None) -> dict[str, str]:
    """The job's S3A configuration as `spark.hadoop.*` session settings, for a session builder:
    they are in place before the SparkContext starts, when Spark already opens what it needs on
    S3 (the event log directory). Empty when neither the job nor the event log touches S3."""
    if not any(is_s3(uri) for uri in (job.input, job.output, event_log_dir)):
        return {}
    return {f"spark.hadoop.{key}": value for key, value in S3Settings.of(job).hadoop_conf().items()}


def configure_s3a(spark: "SparkSession", s3: S3Settings) -> None:
    """Apply the S3A configuration to a running session's Hadoop configuration (driver and,
    through it, executors): for a session built before the job's settings were known."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3.hadoop_conf().items():
        hadoop.set(key, value)


@contextmanager
def session_conf(spark: "SparkSession", conf: dict[str, str]):
    """SQL settings for the duration of a job, restored after (the session may be shared)."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
