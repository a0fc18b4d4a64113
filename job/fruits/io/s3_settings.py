"""The S3 settings of a run, resolved once from the job's options and the standard AWS
variables, and all that is made from them: pyarrow's S3FileSystem options (the job's own
reads and writes, fruits.io.storage), Hadoop's S3A configuration (Spark's own S3 access: event
logs, users' reads of the results), the credentials check, and one sentence for each known
storage failure. Both clients get the same endpoint, region, addressing, TLS, credentials
mode and timeouts by construction: one value feeds both.

The S3A credentials provider is always set explicitly: left alone, S3A walks a chain that
ends at the EC2 node role, the classic silent 403 on EKS.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fruits.settings.errors import UserError

# Bounds on one S3 request, for both clients: connecting, then silence on an open connection,
# times the attempts. An endpoint that refuses connections fails at once, one that accepts
# them and never answers in ~20 s (the SDKs' defaults retry for minutes).
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 6
ATTEMPTS = 3

S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
PROVIDERS = {
    "irsa": "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
    "static": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "static-session": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    "default": "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
    # static keys that stay in the process's environment (a Secret's): the SDK reads them there
    "static-environment": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
}
SECRET_KEYS = ("fs.s3a.access.key", "fs.s3a.secret.key", "fs.s3a.session.token")
IRSA_VARIABLES = ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
JARS_HINT = (
    "run `make jars` (or `python -m fruits.io.s3a_jars`) for local runs, or add "
    "--spark-conf spark.jars.packages=org.apache.hadoop:hadoop-aws:3.3.4 where Maven is reachable"
)

# Faults that pass (a stalled or reset connection, throttling, a server's 5xx): the workers
# retry a read that meets one, with backoff, for up to storage_retry_s(), beyond the SDK's own
# ATTEMPTS. 60 s by default: twice a typical network blip or S3 throttling episode, yet a dead
# endpoint fails a task in about a minute and the run, after Spark's task retries, in minutes.
TRANSIENT = (
    "Timeout was reached",
    "curlCode: 28",
    "curlCode: 52",
    "curlCode: 56",
    "NETWORK_CONNECTION",
    "Connection reset",
    "SlowDown",
    "SLOW_DOWN",
    "Service Unavailable",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_FAILURE",
    "InternalError",
    "REQUEST_TIMEOUT",
    "THROTTLING",
)
STORAGE_RETRY_S = 60


def storage_retry_s() -> float:
    """How long a worker retries a read through transient faults ($FRUITS_STORAGE_RETRY_S)."""
    return float(os.environ.get("FRUITS_STORAGE_RETRY_S", STORAGE_RETRY_S))


def is_transient(text: str) -> bool:
    return any(s in text for s in TRANSIENT)


DISK_FULL = ("No space left on device", "[Errno 28]", "errno 28")
UNREACHABLE = (
    "UnknownHostException",
    "Connection refused",
    "ConnectTimeoutException",
    "Unable to execute HTTP request",
    "SdkClientException: Unable to",
    "NETWORK_CONNECTION",
    "Could not connect",
    "Timeout was reached",
    "Could not resolve host",
)
DENIED = (
    "AccessDenied",
    "ACCESS_DENIED",
    "403 Forbidden",
    "HTTP response code: 403",
    "InvalidAccessKeyId",
    "INVALID_ACCESS_KEY_ID",
    "SignatureDoesNotMatch",
    "SIGNATURE_DOES_NOT_MATCH",
)
NO_BUCKET = ("UnknownStoreException", "NoSuchBucket", "NO_SUCH_BUCKET", "The specified bucket does not exist")


def is_s3(uri: str | None) -> bool:
    return uri is not None and uri.split("://", 1)[0] in ("s3", "s3a", "s3n")


@dataclass(frozen=True)
class S3Settings:
    endpoint: str = ""  # the endpoint URL; "" is AWS itself
    region: str = ""  # "" lets the client find it (pyarrow asks the bucket; S3A uses us-east-1)
    path_style: bool = False
    tls: bool = True  # False for an http:// endpoint
    credentials: str = "default"  # irsa, static or default

    @staticmethod
    def of(config, environ: Mapping[str, str] | None = None) -> "S3Settings":
        """From a JobConfig's --s3-* options, falling back on the standard AWS variables."""
        environ = os.environ if environ is None else environ
        endpoint = config.s3_endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or ""
        region = config.s3_region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
        return S3Settings(
            endpoint,
            region,
            config.s3_path_style,
            config.s3_tls and not endpoint.startswith("http://"),
            config.s3_credentials,
        )

    @property
    def host(self) -> str:
        """The endpoint without scheme or trailing slash (what both clients are given)."""
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    def check_credentials(self, environ: Mapping[str, str] | None = None) -> None:
        """Refuse a credentials mode whose credentials are missing, before any request: left to
        the SDK, `irsa` without a token falls back to whatever the node offers, and `static`
        without keys fails later with a bare 403."""
        environ = os.environ if environ is None else environ
        if self.credentials == "irsa":
            missing = [name for name in IRSA_VARIABLES if not environ.get(name)]
            token = environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
            if missing or token is None or not os.path.isfile(token):  # None: missing names it
                what = (
                    f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
                    if missing
                    else f"the token file {token} does not exist"
                )
                raise UserError(
                    f"--s3-credentials irsa needs the pod's web identity token, but {what}: on EKS, give the pods a "
                    "ServiceAccount annotated with eks.amazonaws.com/role-arn (the chart's serviceAccount.roleArn); "
                    "elsewhere use --s3-credentials static or default."
                )
        if self.credentials == "static" and not (
            environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")
        ):
            raise UserError(
                "--s3-credentials static needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                "environment (on Kubernetes: from a Secret); set them or choose irsa/default."
            )

    def arrow_options(self, bucket: str) -> dict:
        """pyarrow S3FileSystem options: endpoint, region, addressing, TLS, timeouts. No
        credentials: each process resolves them for its mode (fruits.io.storage), none travel in
        a task."""
        self.check_credentials()
        options: dict = {"connect_timeout": CONNECT_TIMEOUT_S, "request_timeout": READ_TIMEOUT_S}
        region = self.region
        if self.endpoint:
            options.update(endpoint_override=self.host, scheme="https" if self.tls else "http")
            if not self.path_style:
                options["force_virtual_addressing"] = True
        elif not region:
            import pyarrow as pa
            import pyarrow.fs as pafs

            try:
                region = pafs.resolve_s3_region(bucket)
            except (OSError, pa.ArrowException):
                pass  # no network yet: the first request reports it
        options["region"] = region or "us-east-1"
        return options

    def hadoop_conf(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Hadoop's S3A configuration: the same endpoint, region, addressing, TLS, timeouts and
        credentials mode (static keys read from `environ` now: S3A takes them as settings)."""
        environ = os.environ if environ is None else environ
        self.check_credentials(environ)
        conf = self.hadoop_conf_without_keys()
        if self.credentials == "static":
            conf.update(
                {
                    "fs.s3a.access.key": environ["AWS_ACCESS_KEY_ID"],
                    "fs.s3a.secret.key": environ["AWS_SECRET_ACCESS_KEY"],
                }
            )
            mode = "static"
            if token := environ.get("AWS_SESSION_TOKEN"):
                conf["fs.s3a.session.token"] = token
                mode = "static-session"
            conf["fs.s3a.aws.credentials.provider"] = PROVIDERS[mode]
        return conf

    def hadoop_conf_without_keys(self) -> dict[str, str]:
        """The same S3A configuration for a process configured before it runs, elsewhere (the
        History Server, whose settings the chart renders; a test holds the two equal): nothing
        checked and no keys here; static keys are read from that process's environment."""
        conf = {
            "fs.s3a.impl": S3A_FILESYSTEM,
            "fs.s3.impl": S3A_FILESYSTEM,  # s3:// URIs work like s3a://
            "fs.s3a.path.style.access": str(self.path_style).lower(),
            "fs.s3a.connection.ssl.enabled": str(self.tls).lower(),
            # SigV4 everywhere: the v1 SDK otherwise signs some requests to custom endpoints with
            # SigV2, which newer regions, MinIO and IAM-checking servers refuse.
            "fs.s3a.signing-algorithm": "AWSS3V4SignerType",
            "fs.s3a.connection.establish.timeout": str(CONNECT_TIMEOUT_S * 1000),
            "fs.s3a.connection.timeout": str(READ_TIMEOUT_S * 1000),
            "fs.s3a.attempts.maximum": str(ATTEMPTS),
            "fs.s3a.retry.limit": str(ATTEMPTS),
        }
        if self.endpoint:
            conf["fs.s3a.endpoint"] = self.host
            if self.region:  # the signing region of a custom endpoint (hadoop-aws 3.3.2+; 3.3.1 ignores it)
                conf["fs.s3a.endpoint.region"] = self.region
        elif self.region:
            # The regional endpoint: every hadoop-aws honours it (3.3.1 has no fs.s3a.endpoint.region,
            # HADOOP-17705), and the SDK signs for the region it names.
            conf["fs.s3a.endpoint"] = f"s3.{self.region}.amazonaws.com"
        mode = "static-environment" if self.credentials == "static" else self.credentials
        conf["fs.s3a.aws.credentials.provider"] = PROVIDERS[mode]
        return conf

    def explain(self, text: str, uri: str) -> str | None:
        """One sentence for a known storage failure in `text` (an exception's text) while
        touching `uri`, else None."""
        if any(s in text for s in DISK_FULL):
            return (
                f"A disk is full (No space left on device) while the job writes {uri!r} or Spark's scratch "
                "files: free some space, or choose an --output on a larger disk."
            )
        if not is_s3(uri):
            if "Permission denied" in text or "[Errno 13]" in text:
                return f"Permission denied on {uri!r}: check that this user may read the input and write the output."
            return None
        bucket = uri.split("://", 1)[-1].split("/", 1)[0]
        endpoint = self.endpoint or "AWS S3"
        if ("ClassNotFoundException" in text and "S3AFileSystem" in text) or 'No FileSystem for scheme "s3' in text:
            return f"The S3A connector jars are not on Spark's classpath: {JARS_HINT}."
        if any(s in text for s in DENIED):
            return (
                f"Access denied to {uri!r} (credentials: {self.credentials}): check the keys or role, and that "
                f"its policy allows reading the input and writing the output prefix of bucket {bucket!r}."
            )
        if any(s in text for s in NO_BUCKET):
            return f"S3 bucket {bucket!r} does not exist at {endpoint}: check the bucket name in {uri!r}."
        if any(s in text for s in UNREACHABLE):
            return (
                f"Cannot reach the S3 endpoint {endpoint} for {uri!r}: check --s3-endpoint / "
                "$AWS_ENDPOINT_URL and the network."
            )
        return None
