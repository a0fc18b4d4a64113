"""The Kubernetes API as fruitsctl uses it: SparkApplications, pods, logs, events.

Every API failure a user can cause or fix (no kubeconfig, cluster down, operator not
installed, RBAC, name taken, app missing) becomes a UserError naming the fix.
"""

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from fruits.cluster import retry
from fruits.cluster.api_errors import (
    GROUP,
    PLURAL,
    VERSION,
    TransientApiError,
    answered,
    matching,
    operator_hint,
    unreachable,
)
from fruits.cluster.retry import Outage
from fruits.settings.errors import UserError

GONE = 410  # a watch's resourceVersion is older than the API server keeps: list again

# A followed log that drops is asked again for the seconds since its last line plus this
# margin; the lines it sends again are recognised by their kubelet timestamps and skipped.
LOG_RECONNECT_MARGIN_S = 30
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def _stamp_key(stamp: str) -> tuple[str, str] | None:
    """An RFC 3339 UTC timestamp as a sortable key (fractions padded to nanoseconds), or None."""
    match = _STAMP.match(stamp)
    return (match.group(1), (match.group(2) or "").ljust(9, "0")) if match else None


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
                raise UserError(
                    "No Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, "
                    "or run inside a pod with a service account."
                )
        except ConfigException as exc:
            raise UserError(
                f"Cannot use the Kubernetes configuration ({exc}): check --kubeconfig and --context."
            ) from None
        api.configuration.retries = 1
        return api

    @contextmanager
    def _errors(self, namespace: str, name: str | None = None, verb: str = "read"):
        try:
            yield
        except ApiException as exc:
            error = answered(exc.status, exc.reason, exc.body, self.host, namespace, name, verb)
            if error is None:
                raise
            raise error from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self.host, exc) from None

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
            raise unreachable(self.host, exc) from None

    def check_submission(self, namespace: str, *service_accounts: str) -> None:
        """Refuse, naming the fix, a submission the operator could only fail: a missing namespace
        (nothing can be created in it) or driver ServiceAccount (spark-submit cannot create the
        driver pod: SUBMISSION_FAILED, retried, then FAILED). Checks this identity may not make
        are skipped."""
        if self._exists(lambda: self.core.read_namespace(namespace)) is False:
            raise UserError(
                f"Namespace {namespace!r} does not exist: {operator_hint(namespace)}; or choose another --namespace."
            )
        for account in dict.fromkeys(service_accounts):
            if self._exists(partial(self.core.read_namespaced_service_account, account, namespace)) is False:
                raise UserError(
                    f"ServiceAccount {account!r} does not exist in namespace {namespace!r}: install the "
                    f"chart there (helm install fruits charts/fruits-pipeline -n {namespace} ...), which "
                    "creates fruits-spark (driver, with its Role) and fruits-spark-executor, or pass "
                    "--service-account and --executor-service-account spark-operator-spark (the operator's "
                    "chart creates it in each namespace it watches)."
                )

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
            found = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, label_selector=label_selector
            )
        return matching(found.get("items", []), label_selector)

    def delete_app(self, namespace: str, name: str) -> None:
        with self._errors(namespace, name, "delete"):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    # Services (the History Server's)
    def list_services(self, namespace: str, label_selector: str) -> list[dict]:
        """The Services matching an equality label selector, as plain objects."""
        with self._errors(namespace, verb="list"), self._services_forbidden(namespace, "list"):
            found = self.core.list_namespaced_service(namespace, label_selector=label_selector)
        return matching(self.api.sanitize_for_serialization(found).get("items", []), label_selector)

    def get_service(self, namespace: str, name: str) -> dict:
        with self._errors(namespace, name), self._services_forbidden(namespace, "read"):
            return self.api.sanitize_for_serialization(self.core.read_namespaced_service(name, namespace))

    @contextmanager
    def _services_forbidden(self, namespace: str, verb: str):
        """403 in a sentence about Services (the shared one is about SparkApplications)."""
        try:
            yield
        except ApiException as exc:
            if exc.status != 403:
                raise
            raise UserError(
                f"Forbidden: your Kubernetes identity may not {verb} services in namespace {namespace!r}, where "
                "fruitsctl looks for the History Server; ask for a Role granting it."
            ) from None

    # Pods, logs, events
    def pod_phase(self, namespace: str, name: str) -> str | None:
        try:
            with self._errors(namespace, name):
                return self.core.read_namespaced_pod(name, namespace).status.phase
        except UserError:
            return None

    def pod_running(self, namespace: str, pod: str) -> bool:
        """Whether the pod may still write to its log: Pending, or Running with a container
        not yet terminated. A pod that is gone has ended; an API that cannot answer raises
        TransientApiError."""
        try:
            with self._errors(namespace, pod):
                status = self.core.read_namespaced_pod(pod, namespace).status
        except TransientApiError:
            raise
        except UserError:
            return False
        containers = status.container_statuses or []
        return status.phase == "Pending" or (
            status.phase == "Running" and (not containers or any(c.state.terminated is None for c in containers))
        )

    def pod_log(self, namespace: str, pod: str) -> Iterator[str]:
        """The lines of the pod's log so far."""
        with self._errors(namespace, pod, "read logs of"):
            response = self.core.read_namespaced_pod_log(pod, namespace, _preload_content=False)
        try:
            buffer = b""
            with self._errors(namespace, pod, "read logs of"):
                for chunk in response.stream(4096):
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    yield from (line.decode("utf-8", errors="replace") for line in lines)
            if buffer:
                yield buffer.decode("utf-8", errors="replace")
        finally:
            response.release_conn()

    def follow_pod_log(self, namespace: str, pod: str) -> Iterator[str]:
        """The pod's log as it grows, on the client's follow stream, until the pod ends.

        A stream that drops, or ends while the pod still runs (an API server restart, a kubelet
        timeout), is opened again, backing off while the API cannot answer
        (fruits.cluster.retry). The lines carry the kubelet's timestamps: the new stream starts
        a little before the last line shown, and what was shown already is skipped, so no line
        is lost or shown twice."""
        last, shown_at_last, last_line_at = None, 0, None
        outage = Outage()
        while True:
            since: int | None = (
                None if last_line_at is None else int(time.monotonic() - last_line_at) + LOG_RECONNECT_MARGIN_S
            )
            again_at_last, problem = 0, None
            try:
                with self._errors(namespace, pod, "read logs of"):
                    for raw in watch.Watch().stream(
                        self.core.read_namespaced_pod_log, pod, namespace, timestamps=True, since_seconds=since
                    ):
                        outage.end()
                        stamp, _, line = raw.partition(" ")
                        key = _stamp_key(stamp)
                        if key is None:  # not a timestamped line: shown as it came
                            yield raw
                            continue
                        if last is not None and key < last:
                            continue
                        if key == last:
                            again_at_last += 1
                            if again_at_last <= shown_at_last:
                                continue
                            shown_at_last += 1
                        else:
                            last, shown_at_last, again_at_last = key, 1, 1
                        last_line_at = time.monotonic()
                        yield line
                if not self.pod_running(namespace, pod):
                    return
            except TransientApiError as exc:
                problem = exc
            if not outage.wait():
                why = f"the Kubernetes API at {self.host} {problem.why}" if problem else "its stream keeps ending"
                raise UserError(
                    f"The log of pod {pod} stopped and could not be read again for "
                    f"{retry.API_OUTAGE_LIMIT_S:.0f} s ({why}): `fruitsctl logs` shows it once the API answers."
                )

    def events(self, namespace: str, names_prefix: str) -> list:
        """Events about the app and its pods (driver and executors share the app's name prefix)."""
        with self._errors(namespace, verb="list events in"):
            items = self.core.list_namespaced_event(namespace).items
        return sorted((e for e in items if _about(e, names_prefix)), key=_event_order)

    def watch_events(self, namespace: str, names_prefix: str, window_s: int = 3) -> Iterator[list]:
        """Events about the app and its pods as they happen: those listed now, then the client's
        watch from the list's resourceVersion. Yields the new events (or none) at least every
        `window_s` seconds, so the caller can stop. A dropped watch resumes from the last
        version seen; one whose version the API no longer keeps (410 Gone) lists again, and
        events already shown (the same uid and count) are skipped."""
        shown: set[tuple[str, int]] = set()
        version, outage = None, Outage()

        def fresh(events) -> list:
            new = [e for e in events if _about(e, names_prefix) and (e.metadata.uid, e.count or 1) not in shown]
            shown.update((e.metadata.uid, e.count or 1) for e in new)
            return new

        while True:
            try:
                if version is None:
                    with self._errors(namespace, verb="list events in"):
                        listed = self.core.list_namespaced_event(namespace)
                    version = listed.metadata.resource_version
                    outage.end()
                    yield sorted(fresh(listed.items), key=_event_order)
                    continue
                with self._errors(namespace, verb="watch events in"):
                    for change in watch.Watch().stream(
                        self.core.list_namespaced_event,
                        namespace,
                        resource_version=version,
                        timeout_seconds=max(1, int(window_s)),
                    ):
                        outage.end()
                        version = change["object"].metadata.resource_version or version
                        if change["type"] in ("ADDED", "MODIFIED"):
                            yield fresh([change["object"]])
                outage.end()
                yield []
            except ApiException as exc:
                if exc.status != GONE:
                    raise
                version = None
            except TransientApiError as exc:
                if not outage.wait():
                    raise UserError(
                        f"The events of {names_prefix} could not be watched for "
                        f"{retry.API_OUTAGE_LIMIT_S:.0f} s (the Kubernetes API at {self.host} {exc.why}): "
                        "`fruitsctl events` lists them once the API answers."
                    ) from None


def _about(event, names_prefix: str) -> bool:
    """Whether an event concerns the app or its pods (driver and executors share its name prefix)."""
    return (event.involved_object.name or "").startswith(names_prefix)


def _event_order(event):
    return (event.last_timestamp or event.event_time or event.metadata.creation_timestamp or 0, event.metadata.name)
