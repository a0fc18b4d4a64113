"""Plain reads of SparkApplications with the standard library, for the commands that only read
(`status`, `list`): importing the official client costs fruitsctl 0.4-0.7 s, more than all the
rest of such a command.

It serves what a kubeconfig holds itself: a bearer token or token file, a client certificate
and key, a CA (or insecure-skip-tls-verify). For anything else (exec plugins such as
`aws eks get-token`, auth providers, several files in KUBECONFIG, a proxy, a pod's service
account) `connect` returns None and the caller uses the official client (fruits.cluster.kube).
Both word failures the same way (fruits.cluster.api_errors).
"""

import base64
import http.client
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import quote, urlencode, urlsplit

from fruits.cluster.api_errors import GROUP, PLURAL, VERSION, answered, matching, unreachable
from fruits.settings.errors import UserError

if TYPE_CHECKING:
    import ssl

TIMEOUT_S = 15
# What a kubeconfig entry may hold for these reads; any other key means a feature they lack.
CLUSTER_KEYS = {
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "extensions",
}
USER_KEYS = {
    "token",
    "tokenFile",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "extensions",
}


class Reader:
    """GETs against one API server, with the kubeconfig's credentials."""

    def __init__(self, server: str, headers: dict[str, str], tls: "ssl.SSLContext | None"):
        self.host = server.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "fruitsctl", **headers}
        self.tls = tls

    def _get(self, path: str, query: dict, namespace: str, name: str | None, verb: str) -> dict:
        url = urlsplit(self.host)
        hostname = cast(str, url.hostname)  # a kubeconfig's server URL names its host
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(hostname, url.port, timeout=TIMEOUT_S, context=self.tls)
        else:
            connection = http.client.HTTPConnection(hostname, url.port, timeout=TIMEOUT_S)
        try:
            connection.request(
                "GET", url.path.rstrip("/") + path + (f"?{urlencode(query)}" if query else ""), headers=self.headers
            )
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(self.host, exc) from None
        finally:
            connection.close()
        if response.status >= 400:
            raise answered(response.status, response.reason, body, self.host, namespace, name, verb) or UserError(
                f"The Kubernetes API at {self.host} answered {response.status} {response.reason} to {path}."
            )
        return json.loads(body)

    def _apps(self, namespace: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{PLURAL}"

    def get_app(self, namespace: str, name: str) -> dict:
        return self._get(f"{self._apps(namespace)}/{quote(name, safe='')}", {}, namespace, name, "read")

    def list_apps(self, namespace: str, label_selector: str) -> list[dict]:
        found = self._get(self._apps(namespace), {"labelSelector": label_selector}, namespace, None, "list")
        return matching(found.get("items", []), label_selector)


def _named(entries, name):
    return next((entry for entry in entries or [] if entry.get("name") == name), None)


def _tls(cluster: dict, user: dict, folder: Path) -> "ssl.SSLContext":
    import ssl  # for https servers only

    def path(key: str) -> str:
        given = cast(str, user.get(key) or cluster.get(key))  # asked for only when one of them holds it
        return str(folder / os.path.expanduser(given))

    authority = cluster.get("certificate-authority-data")
    context = ssl.create_default_context(
        cafile=path("certificate-authority") if cluster.get("certificate-authority") else None,
        cadata=base64.b64decode(authority).decode() if authority else None,
    )
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if user.get("client-certificate-data") or user.get("client-certificate"):
        with tempfile.TemporaryDirectory() as scratch:  # ssl loads a key pair from files only; 0700, removed at once

            def pem(key: str) -> str:
                if user.get(f"{key}-data"):
                    file = Path(scratch) / key
                    file.write_bytes(base64.b64decode(user[f"{key}-data"]))
                    return str(file)
                return path(key)

            context.load_cert_chain(pem("client-certificate"), pem("client-key"))
    return context


def connect(kubeconfig: str | None, context: str | None) -> Reader | None:
    """A Reader for the kubeconfig's context, or None when it needs the official client."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if os.pathsep in path or not Path(path).is_file():
        return None  # several files to merge, or none (in a pod; or the official client's sentence)
    import yaml

    try:
        # libyaml where the wheel has it: a kubeconfig's base64 certificates take the pure
        # Python scanner tens of milliseconds
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        config = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader) or {}
        chosen = _named(config.get("contexts"), context or config.get("current-context"))["context"]
        cluster = _named(config.get("clusters"), chosen["cluster"])["cluster"]
        user = (_named(config.get("users"), chosen.get("user")) or {}).get("user") or {}
    except (OSError, ValueError, yaml.YAMLError, TypeError, KeyError, AttributeError):
        return None  # the official client words what is wrong with it
    if set(cluster) - CLUSTER_KEYS or set(user) - USER_KEYS or not cluster.get("server"):
        return None
    folder = Path(path).resolve().parent
    token = user.get("token")
    try:
        if user.get("tokenFile") and not token:
            token = (folder / user["tokenFile"]).read_text().strip()
        tls = _tls(cluster, user, folder) if cluster["server"].startswith("https:") else None
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    return Reader(cluster["server"], {"Authorization": f"Bearer {token}"} if token else {}, tls)
