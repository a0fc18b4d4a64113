"""The one place a SparkSession is built, for local runs and inside spark-submit."""

import os
import re
import sys
from typing import TYPE_CHECKING, cast

from fruits.io.s3_settings import S3Settings, is_s3
from fruits.settings.config import JobConfig, new_run_id
from fruits.settings.errors import UserError

if TYPE_CHECKING:  # pyspark is imported where a session is built: the CLI starts without it
    from pyspark.sql import SparkSession

# What the job needs whatever the cluster: Arrow for users' pandas conversions, reused Python
# workers (so the model cache survives between tasks), quiet TensorFlow in workers, and
# our worker daemon (fruits.featurize.spark_worker: pyspark's, minus 0.1-0.2 s per task).
JOB_SPARK_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
    # Arrow's buffers in the Python workers on malloc instead of jemalloc, which keeps freed
    # memory: worker peaks 347-361 MB against 370-377 on 2 592 images (two runs each).
    "spark.executorEnv.ARROW_DEFAULT_MEMORY_POOL": "system",
    "spark.python.daemon.module": "fruits.featurize.spark_worker",
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


def local_spark(
    master: str = LOCAL_MASTER, extra_conf: dict[str, str] | None = None, job: JobConfig | None = None
) -> "SparkSession":
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
    except Exception as exc:
        text = str(exc)
        where = re.search(r"\b(s3a?|s3n|file|hdfs)://[^\s'\"]+", text)
        if "EventLog" not in text or where is None:
            raise
        directory = where.group(0)
        if "FileNotFoundException" in text:
            raise UserError(
                f"Spark's event log directory {directory} does not exist: create it first (on S3: aws "
                "s3api put-object --bucket BUCKET --key PREFIX/), or leave the event log out."
            ) from None
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


def default_run_id(spark: "SparkSession") -> str:
    """On Kubernetes, the application's name: spark-submit names the driver pod and the app
    after the SparkApplication (the spark-operator passes `--name`), which is stable across
    the driver attempts of one application and unique per scheduled run; a retried driver
    then finds its own output. Elsewhere, `new_run_id()`."""
    return kubernetes_app_name(spark) or new_run_id()


def kubernetes_app_name(spark: "SparkSession") -> str | None:
    """The SparkApplication's name when the driver runs on Kubernetes, else None."""
    if spark.sparkContext.getConf().get("spark.kubernetes.driver.pod.name", None):
        return cast(str, spark.sparkContext.appName)  # a running context has a name (pyspark: Optional)
    return None


def planned_cores(spark: "SparkSession") -> int:
    """The cores the job asked for (executors x cores each, or dynamic allocation's maximum),
    not the ones registered so far: on Kubernetes, executors keep registering while the job
    starts, and tasks cut for the first two would leave the rest idle."""
    sc = spark.sparkContext
    conf = sc.getConf()
    if cast(str, sc.master).startswith("local"):  # a running context has a master (pyspark: Optional)
        return sc.defaultParallelism
    cores_max = conf.get("spark.cores.max", None)
    if cores_max:  # a standalone cluster's cap
        return max(1, int(cores_max))
    dynamic = conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
    executors = conf.get("spark.dynamicAllocation.maxExecutors" if dynamic else "spark.executor.instances", None)
    if executors and executors.isdigit() and int(executors) < 100_000:
        return max(1, int(executors) * int(conf.get("spark.executor.cores", "1")))
    return sc.defaultParallelism


def merge_groups(spark: "SparkSession", feature_dim: int) -> int:
    """Spark tasks that merge the partitions' tallies: one per executor, within what
    spark.driver.maxResultSize lets the driver receive (a d x d float64 matrix each)."""
    conf = spark.sparkContext.getConf()
    executors = (
        1
        if cast(str, spark.sparkContext.master).startswith("local")
        else planned_cores(spark) // int(conf.get("spark.executor.cores", "1"))
    )
    limit = spark.sparkContext._jsc.sc().conf().getSizeAsBytes("spark.driver.maxResultSize", "1g")
    per_group = feature_dim * feature_dim * 8 + (1 << 20)
    return max(1, min(executors, limit // (2 * per_group) if limit else executors))
