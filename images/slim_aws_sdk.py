"""The AWS SDK v1 bundle cut down to the services S3A reaches (run by images/Dockerfile).

aws-java-sdk-bundle-1.11.901.jar (192 MB) holds the SDK of every AWS service, one package each
under com/amazonaws/services/. This keeps every entry outside those packages (the SDK's core,
its shaded third-party libraries, META-INF) and, of the services, those that hadoop-aws's
classes or the kept entries name, as a class reference or as a class name in a string (the SDK
loads some by name), repeated until no kept entry names a service left out: s3, securitytoken
(assumed roles, IRSA's web identity), kms (SSE-KMS), dynamodbv2 (S3Guard), cloudwatch (the
SDK's metrics) and the two the core's resources name. Left out as well: models/, the code
generator's service descriptions, which no class of the bundle names (checked here). The
output is deterministic: the input's kept entries, in its order, with its timestamps.

    python images/slim_aws_sdk.py HADOOP_AWS_JAR BUNDLE_JAR OUTPUT_JAR
"""

import re
import sys
import zipfile
from pathlib import Path

SERVICE = re.compile(r"com/amazonaws/services/([a-z0-9]+)/")
NAMED = re.compile(rb"com[/.]amazonaws[/.]services[/.]([a-z0-9]+)[/.]")  # com/x/Y or com.x.Y
MODEL_FILE = re.compile(rb"models/[\w.-]+\.json")


def service_of(name: str) -> str | None:
    found = SERVICE.match(name)
    return found.group(1) if found else None


def named_services(data: bytes) -> set[str]:
    return {found.decode() for found in NAMED.findall(data)}


def kept_services(hadoop_aws: zipfile.ZipFile, bundle: zipfile.ZipFile) -> set[str]:
    """The services that hadoop-aws and the bundle's core name, and those they name in turn."""
    names: dict[str | None, set[str]] = {}
    for entry in bundle.infolist():
        if not entry.is_dir() and not entry.filename.startswith("models/"):
            data = bundle.read(entry)
            if entry.filename.endswith(".class") and MODEL_FILE.search(data):
                raise SystemExit(f"{entry.filename} names a file of models/: keep models/ (see this script)")
            names.setdefault(service_of(entry.filename), set()).update(named_services(data))
    wanted = names.get(None, set()).copy()  # the core's
    for entry in hadoop_aws.infolist():
        if not entry.is_dir():
            wanted |= named_services(hadoop_aws.read(entry))
    kept: set[str] = set()
    while wanted - kept:
        service = (wanted - kept).pop()
        kept.add(service)
        wanted |= names.get(service, set())
    return kept


def slim(hadoop_aws: Path, bundle: Path, output: Path) -> set[str]:
    with zipfile.ZipFile(hadoop_aws) as connector, zipfile.ZipFile(bundle) as source:
        kept = kept_services(connector, source)
        partial = output.with_name(output.name + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                service = service_of(entry.filename)
                if entry.filename.startswith("models/") or (service is not None and service not in kept):
                    continue
                copied = zipfile.ZipInfo(entry.filename, entry.date_time)
                copied.compress_type = zipfile.ZIP_STORED if entry.is_dir() else zipfile.ZIP_DEFLATED
                copied.external_attr = entry.external_attr
                target.writestr(copied, source.read(entry))
        partial.rename(output)
    return kept


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    connector, bundle, output = map(Path, sys.argv[1:])
    kept = slim(connector, bundle, output)
    print(
        f"{output.name}: {output.stat().st_size / 1e6:.0f} MB of {bundle.name}'s {bundle.stat().st_size / 1e6:.0f} MB; "
        f"services kept: {', '.join(sorted(kept))}"
    )
