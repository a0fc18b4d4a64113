"""`status` and `list` read with the standard library (fruits.cluster.reads) where the
kubeconfig allows, and through the official client otherwise: the same answers, the same
sentences, and no `kubernetes` import on the plain path."""

import base64
import datetime as dt
import ipaddress
import json
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from fakes.fake_kube import FakeKube
from fruits.cli.main import app
from fruits.cluster import reads
from support.console_text import flat

runner = CliRunner()
JOB = ["--input", "s3a://fruits/in", "--output", "s3a://fruits/runs/r1", "--s3-credentials", "irsa"]


@pytest.fixture(params=["plain reads", "official client"])
def kube(request, tmp_path, monkeypatch):
    """The fake API, read either way: every test here must pass on both."""
    if request.param == "official client":
        monkeypatch.setattr(reads, "connect", lambda kubeconfig, context: None)
    fake = FakeKube()
    fake.token = "test-token"
    fake.config = fake.kubeconfig(tmp_path / "kubeconfig")
    yield fake
    fake.stop()
    assert fake.server_errors == []  # the fake API itself never failed


def cli(kube, *args):
    return runner.invoke(app, [*args, "--kubeconfig", kube.config])


def submitted(kube, *names):
    for name in names:
        assert cli(kube, "submit", *JOB, "--name", name).exit_code == 0
        kube.set_status("default", name, "COMPLETED", {f"{name}-exec-1": "COMPLETED"}, f"{name}-driver", ended=True)


def test_status_and_list_read_the_same_either_way(kube):
    submitted(kube, "fr-a", "fr-b")
    listed = json.loads(cli(kube, "list", "-o", "json").output)
    assert sorted(a["metadata"]["name"] for a in listed) == ["fr-a", "fr-b"]
    status = cli(kube, "status", "fr-a")
    assert status.exit_code == 0 and "state COMPLETED" in flat(status.output)
    label_selectors = [q.get("labelSelector") for path, q in kube.queries if path.endswith("/sparkapplications")]
    assert "app.kubernetes.io/name=fruits-pipeline" in label_selectors


@pytest.mark.parametrize(
    "breakage, command, sentence",
    [
        (None, ["status", "nope"], "No SparkApplication named 'nope' in namespace 'default': `fruitsctl list` shows"),
        ("crd", ["list"], "The SparkApplication resource is not installed on this cluster: install the spark-operator"),
        (
            "forbidden",
            ["status", "x"],
            "Forbidden: your Kubernetes identity may not read sparkapplications in namespace",
        ),
        ("token", ["list"], "The cluster rejected your credentials (401): refresh your kubeconfig login."),
        ("unavailable", ["list"], "answered 503 Service Unavailable: it is overloaded or restarting; try again"),
        ("stopped", ["status", "x"], "Cannot reach the Kubernetes API at http://127.0.0.1:"),
    ],
)
def test_failures_read_the_same_sentence_either_way(kube, breakage, command, sentence):
    if breakage == "crd":
        kube.crd_installed = False
    elif breakage == "forbidden":
        kube.forbidden = True
    elif breakage == "token":
        kube.token = "another-token"
    elif breakage == "unavailable":
        kube.unavailable = 10
    elif breakage == "stopped":
        kube.stop()
        kube.stop = lambda: None
    result = cli(kube, *command)
    assert result.exit_code == 2 and sentence in flat(result.output), result.output


def test_list_and_status_start_without_the_official_client(tmp_path):
    fake = FakeKube()
    try:
        fake.token = "test-token"
        config = fake.kubeconfig(tmp_path / "kubeconfig")
        submitted_app = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {
                "name": "fr-a",
                "namespace": "default",
                "labels": {"app.kubernetes.io/name": "fruits-pipeline"},
            },
        }
        fake.apps[("default", "fr-a")] = submitted_app
        probe = (
            "import sys, json; from fruits.cli.main import app\n"
            "for args in (['list'], ['status', 'fr-a']):\n"
            "    try: app([*args, '--kubeconfig', sys.argv[1]])\n"
            "    except SystemExit as exc: assert not exc.code, exc.code\n"
            "print(json.dumps('kubernetes' in sys.modules))"
        )
        done = subprocess.run([sys.executable, "-c", probe, config], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "fr-a" in done.stdout and json.loads(done.stdout.splitlines()[-1]) is False
    finally:
        fake.stop()


@pytest.mark.parametrize(
    "user, cluster",
    [
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws", "args": ["eks", "get-token"]}},
            {},
        ),
        ({"auth-provider": {"name": "oidc"}}, {}),
        ({"token": "t"}, {"proxy-url": "http://proxy:3128"}),
        ({"token": "t"}, {"tls-server-name": "api.internal"}),
    ],
)
def test_what_plain_reads_cannot_serve_goes_to_the_official_client(tmp_path, user, cluster):
    fake = FakeKube()
    try:
        assert reads.connect(fake.kubeconfig(tmp_path / "kubeconfig", user, cluster), None) is None
        assert reads.connect(fake.kubeconfig(tmp_path / "kubeconfig"), None) is not None
        assert reads.connect(f"{tmp_path / 'kubeconfig'}:{tmp_path / 'other'}", None) is None  # several to merge
    finally:
        fake.stop()


def test_an_exec_plugin_kubeconfig_reads_through_the_official_client(tmp_path):
    """As on EKS (`aws eks get-token`): a plugin prints an ExecCredential with the token."""
    fake = FakeKube()
    try:
        fake.token = "from-the-plugin"
        plugin = tmp_path / "get-token"
        credential = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": "from-the-plugin"},
        }
        plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
        plugin.chmod(0o755)
        config = fake.kubeconfig(
            tmp_path / "kubeconfig",
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": str(plugin),
                    "interactiveMode": "Never",
                }
            },
        )
        fake.apps[("default", "fr-a")] = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {"name": "fr-a", "namespace": "default"},
        }
        result = runner.invoke(app, ["status", "fr-a", "-o", "json", "--kubeconfig", config])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["metadata"]["name"] == "fr-a"
    finally:
        fake.stop()


# ---------------------------------------------------------------- TLS with client certificates
def _certificate(subject: str, key, issuer=None, issuer_key=None, ca=False, ip=None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(item) -> bytes:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def tls_kube(tmp_path):
    """The fake API over HTTPS, asking for a client certificate signed by its CA (as minikube's)."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("fake-ca", ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, ca, ca_key, ip="127.0.0.1")
    client = _certificate("fruits-user", client_key, ca, ca_key)
    (tmp_path / "server.pem").write_bytes(_pem(server) + _pem(server_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    context.load_verify_locations(cadata=_pem(ca).decode())
    context.verify_mode = ssl.CERT_REQUIRED
    fake = FakeKube(tls=context)
    fake.pems = {"ca": _pem(ca), "client": _pem(client), "client_key": _pem(client_key)}
    (tmp_path / "ca.crt").write_bytes(fake.pems["ca"])
    yield fake
    fake.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_plain_reads_speak_tls_with_a_client_certificate_and_a_ca_file_or_data(tls_kube, tmp_path):
    tls_kube.apps[("default", "fr-a")] = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "fr-a", "namespace": "default"},
    }
    user = {
        "client-certificate-data": b64(tls_kube.pems["client"]),
        "client-key-data": b64(tls_kube.pems["client_key"]),
    }
    for cluster in ({"certificate-authority-data": b64(tls_kube.pems["ca"])}, {"certificate-authority": "ca.crt"}):
        config = tls_kube.kubeconfig(tmp_path / "kubeconfig", user, cluster)
        reader = reads.connect(config, None)
        assert reader is not None and reader.get_app("default", "fr-a")["metadata"]["name"] == "fr-a"
    for broken_user, broken_cluster in (
        ({"token": "t"}, {"certificate-authority": "ca.crt"}),  # no certificate
        (user, {}),
    ):  # the system's CAs, which did not sign the server's
        config = tls_kube.kubeconfig(tmp_path / "kubeconfig", broken_user, broken_cluster)
        with pytest.raises(Exception, match="Cannot reach the Kubernetes API"):
            reads.connect(config, None).get_app("default", "fr-a")
        result = runner.invoke(app, ["status", "fr-a", "--kubeconfig", config])
        assert result.exit_code == 2 and f"Cannot reach the Kubernetes API at {tls_kube.url}" in flat(result.output)
