"""What the Kubernetes API's failures mean to a user, in one sentence naming the fix: the same
for the official client (fruits.cluster.kube) and the plain reads (fruits.cluster.reads)."""

import json

from fruits.settings.errors import UserError

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
OPERATOR_VERSION = "2.5.2"
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def operator_hint(namespace: str) -> str:
    """How to install the spark-operator so that it runs applications in `namespace`: the
    operator only watches its spark.jobNamespaces (default: [default]), and its chart creates
    a ServiceAccount and Role in each of them, so the namespace must exist first."""
    return (
        f"kubectl create namespace {namespace} (if missing; deploy/namespace.yaml also enforces the restricted "
        f"Pod Security profile), then helm repo add spark-operator "
        f"https://kubeflow.github.io/spark-operator && helm upgrade --install spark-operator "
        f"spark-operator/spark-operator --version {OPERATOR_VERSION} --namespace spark-operator "
        f"--create-namespace --set 'spark.jobNamespaces={{{namespace}}}'"
    )


class TransientApiError(UserError):
    """The API server could not answer now (unreachable, overloaded, restarting): a caller
    that polls may try again; one that does not reports the sentence. `why` is the short
    form ("answered 503 Service Unavailable") for a caller's own sentence."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


def status_body(body) -> dict:
    """The Status object the API answered with, or {} when it sent something else."""
    try:
        found = json.loads(body) if body else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def answered(
    code: int, reason: str, body, host: str, namespace: str, name: str | None = None, verb: str = "read"
) -> UserError | None:
    """The UserError for an API answer with an error code, or None when the user cannot fix it."""
    status = status_body(body)
    if code == 404:
        if status.get("reason") == "NotFound" and (status.get("details") or {}).get("name"):
            what = status["details"].get("kind", PLURAL)
            if what == PLURAL:
                return UserError(
                    f"No SparkApplication named {name!r} in namespace {namespace!r}: "
                    "`fruitsctl list` shows the runs there."
                )
            return UserError(f"{what} {status['details']['name']!r} not found in namespace {namespace!r}.")
        return UserError(
            f"The SparkApplication resource is not installed on this cluster: install the "
            f"spark-operator: {operator_hint(namespace)}."
        )
    message = status.get("message", reason) or ""
    if "admission webhook" in message:
        return UserError(f"The spark-operator's admission webhook refused the SparkApplication: {message}")
    if code == 403:
        return UserError(
            f"Forbidden: your Kubernetes identity may not {verb} {PLURAL} in namespace "
            f"{namespace!r} ({message}); ask for a Role granting it."
        )
    if code == 401:
        return UserError("The cluster rejected your credentials (401): refresh your kubeconfig login.")
    if code == 409:
        return UserError(
            f"A SparkApplication named {name!r} already exists in namespace {namespace!r}: "
            "choose another --name, or `fruitsctl delete` it first."
        )
    if code == 422:
        return UserError(f"The cluster rejected the SparkApplication: {message}")
    if code in TRANSIENT_STATUSES:
        why = f"answered {code} {reason}"
        return TransientApiError(
            f"The Kubernetes API at {host} {why}: it is overloaded or restarting; try again in a moment.", why
        )
    return None


def unreachable(host: str, exc: Exception) -> TransientApiError:
    why = f"cannot be reached ({type(exc).__name__})"
    return TransientApiError(
        f"Cannot reach the Kubernetes API at {host} ({type(exc).__name__}): check that the "
        "cluster is running and --context / --kubeconfig point at it.",
        why,
    )


def matching(items: list[dict], label_selector: str) -> list[dict]:
    """The items whose labels match an equality selector (`a=b,c=d`), filtered here too: some
    API fakes and proxies ignore selectors."""
    wanted = dict(part.split("=", 1) for part in label_selector.split(",") if "=" in part)
    return [
        item for item in items if all(item.get("metadata", {}).get("labels", {}).get(k) == v for k, v in wanted.items())
    ]
