"""The Kubernetes API as fruitsctl uses it: SparkApplications, pods, logs, events.

Every API failure a user can cause or fix (no kubeconfig, cluster down, operator not
installed, RBAC, name taken, app missing) becomes a UserError naming the fix.
"""

import json
import os
from contextlib import contextmanager
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from fruits.errors import UserError

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
OPERATOR_VERSION = "2.5.2"


def operator_hint(namespace: str) -> str:
    """How to install the spark-operator so that it runs applications in `namespace`: the
    operator only watches its spark.jobNamespaces (default: [default]), and its chart creates
    a ServiceAccount and Role in each of them, so the namespace must exist first."""
    return (f"kubectl create namespace {namespace} (if missing; deploy/namespace.yaml also enforces the restricted "
            f"Pod Security profile), then helm repo add spark-operator "
            f"https://kubeflow.github.io/spark-operator && helm upgrade --install spark-operator "
            f"spark-operator/spark-operator --version {OPERATOR_VERSION} --namespace spark-operator "
            f"--create-namespace --set 'spark.jobNamespaces={{{namespace}}}'")


class TransientApiError(UserError):
    """The API server could not answer now (unreachable, overloaded, restarting): a caller
    that polls may try again; one that does not reports the sentence."""


TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def _status_body(exc: ApiException) -> dict:
    try:
        return json.loads(exc.body) if exc.body else {}
    except ValueError:
        return {}


class Kube:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        self.api = self._connect(kubeconfig, context)
        self.host = self.api.configuration.host
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    @staticmethod
    def _connect(kubeconfig: str | None, context: str | None) -> client.ApiClient:
        path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        if kubeconfig and not Path(kubeconfig).is_file():
            raise UserError(f"Kubeconfig {kubeconfig!r} does not exist: check --kubeconfig.")
        try:
            if Path(path.split(os.pathsep)[0]).is_file():
                api = config.new_client_from_config(config_file=path, context=context)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config()
                api = client.ApiClient()
            else:
                raise UserError("No Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, "
                                "or run inside a pod with a service account.")
        except ConfigException as exc:
            raise UserError(f"Cannot use the Kubernetes configuration ({exc}): check --kubeconfig and --context.") from None
        api.configuration.retries = 1
        return api

    @contextmanager
    def _errors(self, namespace: str, name: str | None = None, verb: str = "read"):
        try:
            yield
        except ApiException as exc:
            status = _status_body(exc)
            if exc.status == 404:
                if status.get("reason") == "NotFound" and (status.get("details") or {}).get("name"):
                    what = status["details"].get("kind", "sparkapplications")
                    if what == PLURAL:
                        raise UserError(f"No SparkApplication named {name!r} in namespace {namespace!r}: "
                                        "`fruitsctl list` shows the runs there.") from None
                    raise UserError(f"{what} {status['details']['name']!r} not found in namespace {namespace!r}.") from None
                raise UserError(f"The SparkApplication resource is not installed on this cluster: install the "
                                f"spark-operator: {operator_hint(namespace)}.") from None
            message = status.get("message", exc.reason) or ""
            if "admission webhook" in message:
                raise UserError(f"The spark-operator's admission webhook refused the SparkApplication: {message}") from None
            if exc.status == 403:
                raise UserError(f"Forbidden: your Kubernetes identity may not {verb} {PLURAL} in namespace "
                                f"{namespace!r} ({status.get('message', exc.reason)}); ask for a Role granting it.") from None
            if exc.status == 401:
                raise UserError("The cluster rejected your credentials (401): refresh your kubeconfig login.") from None
            if exc.status == 409:
                raise UserError(f"A SparkApplication named {name!r} already exists in namespace {namespace!r}: "
                                "choose another --name, or `fruitsctl delete` it first.") from None
            if exc.status == 422:
                raise UserError(f"The cluster rejected the SparkApplication: {status.get('message', exc.reason)}") from None
            if exc.status in TRANSIENT_STATUSES:
                raise TransientApiError(f"The Kubernetes API at {self.host} answered {exc.status} {exc.reason}: it is "
                                        "overloaded or restarting; try again in a moment.") from None
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientApiError(f"Cannot reach the Kubernetes API at {self.host} ({type(exc).__name__}): check "
                                    "that the cluster is running and --context / --kubeconfig point at it.") from None

    # What a submission needs before the operator can run it
    def _exists(self, read) -> bool | None:
        """Whether an object exists; None when this identity may not look (then nobody knows)."""
        try:
            read()
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status in (401, 403):
                return None
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UserError(f"Cannot reach the Kubernetes API at {self.host} ({type(exc).__name__}): check that the "
                            "cluster is running and --context / --kubeconfig point at it.") from None

    def check_submission(self, namespace: str, *service_accounts: str) -> None:
        """Refuse, naming the fix, a submission the operator could only fail: a missing namespace
        (nothing can be created in it) or driver ServiceAccount (spark-submit cannot create the
        driver pod: SUBMISSION_FAILED, retried, then FAILED). Checks this identity may not make
        are skipped."""
        if self._exists(lambda: self.core.read_namespace(namespace)) is False:
            raise UserError(f"Namespace {namespace!r} does not exist: {operator_hint(namespace)}; "
                            "or choose another --namespace.")
        for account in dict.fromkeys(service_accounts):
            if self._exists(lambda: self.core.read_namespaced_service_account(account, namespace)) is False:
                raise UserError(f"ServiceAccount {account!r} does not exist in namespace {namespace!r}: install the "
                                f"chart there (helm install fruits charts/fruits-pipeline -n {namespace} ...), which "
                                "creates fruits-spark (driver, with its Role) and fruits-spark-executor, or pass "
                                "--service-account and --executor-service-account spark-operator-spark (the operator's "
                                "chart creates it in each namespace it watches).")

    # SparkApplications
    def create_app(self, body: dict) -> dict:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        with self._errors(namespace, name, "create"):
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get_app(self, namespace: str, name: str) -> dict:
        with self._errors(namespace, name):
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def list_apps(self, namespace: str, label_selector: str) -> list[dict]:
        with self._errors(namespace, verb="list"):
            found = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             label_selector=label_selector)
        wanted = dict(part.split("=", 1) for part in label_selector.split(",") if "=" in part)
        return [item for item in found.get("items", [])  # filter here too: some API fakes ignore selectors
                if all(item.get("metadata", {}).get("labels", {}).get(k) == v for k, v in wanted.items())]

    def delete_app(self, namespace: str, name: str) -> None:
        with self._errors(namespace, name, "delete"):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    # Pods, logs, events
    def pod_phase(self, namespace: str, name: str) -> str | None:
        try:
            with self._errors(namespace, name):
                return self.core.read_namespaced_pod(name, namespace).status.phase
        except UserError:
            return None

    def pod_log(self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None):
        """Lines of the pod's log (a stream when following)."""
        with self._errors(namespace, pod, "read logs of"):
            response = self.core.read_namespaced_pod_log(pod, namespace, follow=follow, _preload_content=False,
                                                         since_seconds=since_seconds)
        try:
            buffer = b""
            for chunk in response.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
            if buffer:
                yield buffer.decode("utf-8", errors="replace")
        finally:
            response.release_conn()

    def events(self, namespace: str, names_prefix: str) -> list:
        """Events about the app and its pods (driver and executors share the app's name prefix)."""
        with self._errors(namespace, verb="list events in"):
            items = self.core.list_namespaced_event(namespace).items
        related = [e for e in items if (e.involved_object.name or "").startswith(names_prefix)]
        return sorted(related, key=lambda e: (e.last_timestamp or e.event_time or e.metadata.creation_timestamp or 0,
                                              e.metadata.name))
