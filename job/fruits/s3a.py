"""S3 through Hadoop's S3A connector: one place turns the user-level S3 settings into
Hadoop configuration, and S3 failures into sentences that name the fix.

The credentials provider is always set explicitly: left alone, S3A walks a chain that
ends at the EC2 node role, the classic silent 403 on EKS.
"""

import os
from contextlib import contextmanager
from typing import Mapping

from fruits.config import JobConfig
from fruits.errors import UserError

S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
PROVIDERS = {
    "irsa": "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
    "static": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "static-session": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    "default": "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
}
SECRET_KEYS = ("fs.s3a.access.key", "fs.s3a.secret.key", "fs.s3a.session.token")
JARS_HINT = ("run `make jars` (or `python -m fruits.s3a_jars`) for local runs, or add "
             "--spark-conf spark.jars.packages=org.apache.hadoop:hadoop-aws:3.3.4 where Maven is reachable")


def is_s3(uri: str | None) -> bool:
    return bool(uri) and uri.split("://", 1)[0] in ("s3", "s3a", "s3n")


def endpoint_of(config: JobConfig, environ: Mapping[str, str]) -> str:
    return config.s3_endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or ""


def region_of(config: JobConfig, environ: Mapping[str, str]) -> str:
    return config.s3_region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""


IRSA_VARIABLES = ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


def credentials_check(config: JobConfig, environ: Mapping[str, str]) -> None:
    """Refuse a credentials mode whose credentials are missing, before any request: left to
    the SDK, `irsa` without a token falls back to whatever the node offers, and `static`
    without keys fails later with a bare 403."""
    if config.s3_credentials == "irsa":
        missing = [name for name in IRSA_VARIABLES if not environ.get(name)]
        token = environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        if missing or not os.path.isfile(token):
            what = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" if missing \
                else f"the token file {token} does not exist"
            raise UserError(f"--s3-credentials irsa needs the pod's web identity token, but {what}: on EKS, "
                            "give the pods a ServiceAccount annotated with eks.amazonaws.com/role-arn "
                            "(the chart's serviceAccount.roleArn); elsewhere use --s3-credentials static or default.")
    if config.s3_credentials == "static" and not (environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")):
        raise UserError("--s3-credentials static needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                        "environment (on Kubernetes: from a Secret); set them or choose irsa/default.")


# Bounds on S3A's requests (Spark's event logs, users' own reads of the results): the
# defaults retry an unreachable endpoint for minutes.
S3A_TIMEOUTS = {
    "fs.s3a.connection.establish.timeout": "5000",
    "fs.s3a.connection.timeout": "30000",
    "fs.s3a.attempts.maximum": "3",
    "fs.s3a.retry.limit": "3",
}


def s3a_conf(config: JobConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Hadoop configuration for S3A from the job's S3 settings and the standard AWS variables."""
    environ = os.environ if environ is None else environ
    endpoint = endpoint_of(config, environ)
    tls = config.s3_tls and not endpoint.startswith("http://")
    conf = {
        "fs.s3a.impl": S3A_FILESYSTEM,
        "fs.s3.impl": S3A_FILESYSTEM,  # s3:// URIs work like s3a://
        "fs.s3a.path.style.access": str(config.s3_path_style).lower(),
        "fs.s3a.connection.ssl.enabled": str(tls).lower(),
        # SigV4 everywhere: the v1 SDK otherwise signs some requests to custom endpoints with
        # SigV2, which newer regions, MinIO and IAM-checking servers refuse.
        "fs.s3a.signing-algorithm": "AWSS3V4SignerType",
        **S3A_TIMEOUTS,
    }
    region = region_of(config, environ)
    if endpoint:
        conf["fs.s3a.endpoint"] = endpoint.split("://", 1)[-1].rstrip("/")
        if region:  # the signing region of a custom endpoint (hadoop-aws 3.3.2+; 3.3.1 ignores it)
            conf["fs.s3a.endpoint.region"] = region
    elif region:
        # The regional endpoint: every hadoop-aws honours it (3.3.1 has no fs.s3a.endpoint.region,
        # HADOOP-17705), and the SDK signs for the region it names.
        conf["fs.s3a.endpoint"] = f"s3.{region}.amazonaws.com"
    mode = config.s3_credentials
    if mode == "static":
        credentials_check(config, environ)
        key, secret = environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"]
        conf.update({"fs.s3a.access.key": key, "fs.s3a.secret.key": secret})
        if token := environ.get("AWS_SESSION_TOKEN"):
            conf["fs.s3a.session.token"] = token
            mode = "static-session"
    conf["fs.s3a.aws.credentials.provider"] = PROVIDERS[mode]
    return conf


def s3a_session_conf(config: JobConfig, event_log_dir: str | None = None,
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """s3a_conf as `spark.hadoop.*` session settings, for a session builder: they are in place
    before the SparkContext starts, when Spark already opens what it needs on S3 (the event
    log directory). Empty when neither the job nor the event log touches S3."""
    if not any(is_s3(uri) for uri in (config.input, config.output, event_log_dir)):
        return {}
    environ = os.environ if environ is None else environ
    credentials_check(config, environ)
    return {f"spark.hadoop.{key}": value for key, value in s3a_conf(config, environ).items()}


def configure_s3a(spark, config: JobConfig, environ: Mapping[str, str] | None = None) -> None:
    """Apply s3a_conf to a running session's Hadoop configuration (driver and, through it,
    executors): for a session built before the job's settings were known (a shared one)."""
    environ = os.environ if environ is None else environ
    credentials_check(config, environ)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(config, environ).items():
        hadoop.set(key, value)


DISK_FULL = ("No space left on device", "[Errno 28]", "errno 28")
UNREACHABLE = ("UnknownHostException", "Connection refused", "ConnectTimeoutException", "Unable to execute HTTP request",
               "SdkClientException: Unable to", "NETWORK_CONNECTION", "Could not connect", "Timeout was reached",
               "Could not resolve host")


def explain_storage_error(text: str, uri: str, config: JobConfig) -> str | None:
    """One sentence for a known storage failure in `text` (an exception's text), else None."""
    if any(s in text for s in DISK_FULL):
        return (f"A disk is full (No space left on device) while the job writes {uri!r} or Spark's scratch "
                "files: free some space, or choose an --output on a larger disk.")
    if not is_s3(uri):
        if "Permission denied" in text or "[Errno 13]" in text:
            return f"Permission denied on {uri!r}: check that this user may read the input and write the output."
        return None
    bucket = uri.split("://", 1)[-1].split("/", 1)[0]
    endpoint = endpoint_of(config, os.environ) or "AWS S3"
    if "ClassNotFoundException" in text and "S3AFileSystem" in text or 'No FileSystem for scheme "s3' in text:
        return f"The S3A connector jars are not on Spark's classpath: {JARS_HINT}."
    if any(s in text for s in ("AccessDenied", "ACCESS_DENIED", "403 Forbidden", "HTTP response code: 403",
                               "InvalidAccessKeyId", "INVALID_ACCESS_KEY_ID", "SignatureDoesNotMatch",
                               "SIGNATURE_DOES_NOT_MATCH")):
        return (f"Access denied to {uri!r} (credentials: {config.s3_credentials}): check the keys or role, and "
                f"that its policy allows reading the input and writing the output prefix of bucket {bucket!r}.")
    if any(s in text for s in ("UnknownStoreException", "NoSuchBucket", "NO_SUCH_BUCKET",
                               "The specified bucket does not exist")):
        return f"S3 bucket {bucket!r} does not exist at {endpoint}: check the bucket name in {uri!r}."
    if any(s in text for s in UNREACHABLE):
        return (f"Cannot reach the S3 endpoint {endpoint} for {uri!r}: check --s3-endpoint / "
                "$AWS_ENDPOINT_URL and the network.")
    return None


@contextmanager
def storage_errors_as_user_errors(uri: str, config: JobConfig, doing: str | None = None):
    """Turn known storage failures while touching `uri` into UserErrors.

    With `doing` (e.g. "list the input"), any other failure also becomes a UserError
    quoting the storage's own first line: use it where only reaching storage can fail.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        message = explain_storage_error(str(exc), uri, config)
        if message is None and doing:
            first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            message = f"Cannot {doing} {uri!r}: {first_line.strip()}"
        if message is None:
            raise
        raise UserError(message) from None
