"""A small Kubernetes API over real HTTP: the parts fruitsctl uses, for the official client.

SparkApplications (create/get/list/delete, label selectors), namespaces and
ServiceAccounts (read), Services (get; list, label selectors), pods, pod logs (streamed with
follow=true; timestamps and sinceSeconds as the kubelet gives them), events (listed, or
watched from a resourceVersion for timeoutSeconds; a version older than the fake keeps gets
410 Gone). As the real API does, nothing is created in a namespace that does not exist. Tests can cut the next streams
short (`cut_streams`: the connection closes mid-body after N lines), as a restarting API
server or a proxy's idle timeout does. Tests play the spark-operator
by setting `status` through `FakeKube.set_status`, or run tests/fake_operator.py's
FakeOperator; they can switch off the CRD, forbid requests, make the operator's admission
webhook deny, or stop the server. Every request is recorded, so tests can validate what the
CLI sent.
"""

import datetime as dt
import json
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

APPS = re.compile(r"^/apis/sparkoperator\.k8s\.io/v1beta2/namespaces/([^/]+)/sparkapplications(?:/([^/]+))?$")
POD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)(/log)?$")
NAMESPACE = re.compile(r"^/api/v1/namespaces/([^/]+)$")
SERVICE_ACCOUNT = re.compile(r"^/api/v1/namespaces/([^/]+)/serviceaccounts/([^/]+)$")
EVENTS = re.compile(r"^/api/v1/namespaces/([^/]+)/events$")
SERVICES = re.compile(r"^/api/v1/namespaces/([^/]+)/services(?:/([^/]+))?$")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(at_ns: int) -> str:
    """The kubelet's log timestamp: RFC 3339 in UTC with nanoseconds."""
    seconds, nanos = divmod(at_ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
        **({"details": details} if details else {}),
    }


class FakeKube:
    def __init__(self, tls: "ssl.SSLContext | None" = None):
        self.apps: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.services: dict[tuple[str, str], dict] = {}
        self.logs: dict[tuple[str, str], list[tuple[float, str]]] = {}  # (time.time_ns(), line)
        self.logs_closed: set[tuple[str, str]] = set()
        self.events: list[dict] = []
        self.requests: list[tuple[str, str, dict | None]] = []
        self.reads: dict[tuple[str, str], int] = {}  # GETs served per SparkApplication
        self.namespaces = {"default"}
        self.service_accounts = {("default", "fruits-spark"), ("default", "fruits-spark-executor")}
        self.crd_installed = True
        self.forbidden = False
        self.forbidden_reads = False  # namespaces and ServiceAccounts: a namespace-scoped identity may not read them
        self.webhook_denial: str | None = None  # what the operator's validating webhook says, if it refuses
        self.unavailable = 0  # the next N requests get 503, as from an API server restarting
        self.cut_streams: list[int] = []  # each new log or watch stream closes abruptly after this many lines
        self.unavailable_after_cut = 0  # then the API server is down for this many requests
        self.on_watch: dict[
            int, object
        ] = {}  # the Nth event watch (1-based) first runs this: history changes as it is watched
        self.watches = 0
        self.server_errors: list[BaseException] = []  # what a handler raised, other than a client hanging up
        self.queries: list[tuple[str, dict]] = []  # the query of every request, by path
        self.token: str | None = None  # when set, a request without this bearer token gets 401
        self.version = 0  # resourceVersion of the last event written
        self.oldest_version = 0  # watches from before this version get 410 Gone (compacted)
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def handle_any(self, method: str):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self._body() if method in ("POST", "PUT", "PATCH") else None
                with fake.lock:
                    fake.requests.append((method, url.path, body))
                    fake.queries.append((url.path, query))
                    blip = fake.unavailable > 0
                    fake.unavailable -= blip
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, status(401, "Unauthorized", "Unauthorized"))
                if blip:
                    return self._send(
                        503, status(503, "ServiceUnavailable", "the server is currently unable to handle the request")
                    )
                if fake.forbidden:
                    return self._send(
                        403, status(403, "Forbidden", f'user "test" cannot {method.lower()} resource at {url.path}')
                    )
                if match := NAMESPACE.match(url.path):
                    return self._read(match.group(1) in fake.namespaces, "namespaces", match.group(1))
                if match := SERVICE_ACCOUNT.match(url.path):
                    return self._read(
                        (match.group(1), match.group(2)) in fake.service_accounts, "serviceaccounts", match.group(2)
                    )
                if match := APPS.match(url.path):
                    if not fake.crd_installed:
                        return self._send(404, b"404 page not found", "text/plain")
                    return self._apps(method, match.group(1), match.group(2), body, query)
                if match := SERVICES.match(url.path):
                    return self._services(match.group(1), match.group(2), query)
                if match := POD.match(url.path):
                    return self._pod(match.group(1), match.group(2), bool(match.group(3)), query)
                if match := EVENTS.match(url.path):
                    if query.get("watch", "").lower() in ("true", "1"):
                        return self._watch_events(match.group(1), query)
                    with fake.lock:
                        items = [e for e in fake.events if e["metadata"]["namespace"] == match.group(1)]
                        listed = {"resourceVersion": str(fake.version)}
                    return self._send(
                        200, {"kind": "EventList", "apiVersion": "v1", "metadata": listed, "items": items}
                    )
                return self._send(404, b"404 page not found", "text/plain")

            def _read(self, exists: bool, kind: str, name: str):
                if fake.forbidden_reads:
                    return self._send(403, status(403, "Forbidden", f'{kind} "{name}" is forbidden'))
                if not exists:
                    return self._send(
                        404, status(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})
                    )
                return self._send(200, {"apiVersion": "v1", "metadata": {"name": name}})

            def _apps(self, method, namespace, name, body, query):
                key = (namespace, name)
                with fake.lock:
                    if method == "POST" and namespace not in fake.namespaces:
                        return self._send(
                            404,
                            status(
                                404,
                                "NotFound",
                                f'namespaces "{namespace}" not found',
                                {"name": namespace, "kind": "namespaces"},
                            ),
                        )
                    if method == "POST" and fake.webhook_denial:
                        return self._send(
                            403,
                            status(
                                403,
                                "Forbidden",
                                "admission webhook "
                                '"validate-sparkapplication.sparkoperator.k8s.io" denied the '
                                f"request: {fake.webhook_denial}",
                            ),
                        )
                    if method == "POST":
                        name = body["metadata"]["name"]
                        if (namespace, name) in fake.apps:
                            return self._send(
                                409,
                                status(
                                    409,
                                    "AlreadyExists",
                                    f'sparkapplications "{name}" already exists',
                                    {"name": name, "kind": "sparkapplications"},
                                ),
                            )
                        obj = json.loads(json.dumps(body))
                        obj["metadata"].update(creationTimestamp=now(), uid=str(uuid.uuid4()), resourceVersion="1")
                        fake.apps[(namespace, name)] = obj
                        return self._send(201, obj)
                    if method == "GET" and name is None:
                        wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
                        items = [
                            a
                            for (ns, _), a in fake.apps.items()
                            if ns == namespace
                            and all(a["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
                        ]
                        return self._send(
                            200,
                            {
                                "apiVersion": "sparkoperator.k8s.io/v1beta2",
                                "kind": "SparkApplicationList",
                                "metadata": {},
                                "items": items,
                            },
                        )
                    if key not in fake.apps:
                        return self._send(
                            404,
                            status(
                                404,
                                "NotFound",
                                f'sparkapplications "{name}" not found',
                                {"name": name, "group": "sparkoperator.k8s.io", "kind": "sparkapplications"},
                            ),
                        )
                    if method == "GET":
                        fake.reads[key] = fake.reads.get(key, 0) + 1
                        return self._send(200, fake.apps[key])
                    if method == "DELETE":
                        del fake.apps[key]
                        return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                return self._send(405, status(405, "MethodNotAllowed", method))

            def _services(self, namespace, name, query):
                with fake.lock:
                    if name is not None:
                        found = fake.services.get((namespace, name))
                        if found is None:
                            return self._send(
                                404,
                                status(
                                    404,
                                    "NotFound",
                                    f'services "{name}" not found',
                                    {"name": name, "kind": "services"},
                                ),
                            )
                        return self._send(200, {"apiVersion": "v1", "kind": "Service", **found})
                    wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
                    items = [  # as the real API lists them: without kind and apiVersion
                        s
                        for (ns, _), s in fake.services.items()
                        if ns == namespace
                        and all(s["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
                    ]
                    listed = {"resourceVersion": str(fake.version)}
                return self._send(200, {"kind": "ServiceList", "apiVersion": "v1", "metadata": listed, "items": items})

            def _pod(self, namespace, name, log, query):
                key = (namespace, name)
                if key not in fake.pods:
                    return self._send(
                        404, status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
                    )
                if not log:
                    return self._send(200, fake.pods[key])
                follow = query.get("follow", "").lower() in ("true", "1")  # the client sends "True"
                stamps = query.get("timestamps", "").lower() in ("true", "1")
                since = time.time_ns() - int(query["sinceSeconds"]) * 10**9 if "sinceSeconds" in query else 0
                self._start_stream("text/plain")
                sent, cut = 0, self._cut_after()
                while True:
                    with fake.lock:
                        lines, closed = list(fake.logs.get(key, [])), key in fake.logs_closed
                    for at, line in lines[sent:]:
                        if at < since:
                            continue
                        if cut is not None and cut <= 0:
                            return self._cut()
                        cut = None if cut is None else cut - 1
                        self._chunk((f"{stamp(at)} {line}" if stamps else line) + "\n")
                    sent = len(lines)
                    if not follow or closed:
                        break
                    time.sleep(0.02)
                self.wfile.write(b"0\r\n\r\n")

            def _watch_events(self, namespace, query):
                with fake.lock:
                    fake.watches += 1
                    action = fake.on_watch.get(fake.watches)
                if action:
                    action()
                start = int(query.get("resourceVersion") or 0)
                deadline = time.monotonic() + int(query.get("timeoutSeconds") or 30)
                self._start_stream("application/json")
                if start < fake.oldest_version:
                    gone = status(410, "Expired", f"too old resource version: {start} ({fake.oldest_version})")
                    self._chunk(json.dumps({"type": "ERROR", "object": gone}) + "\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                seen, cut = start, self._cut_after()
                while time.monotonic() < deadline:
                    with fake.lock:
                        new = [
                            e
                            for e in fake.events
                            if e["metadata"]["namespace"] == namespace and int(e["metadata"]["resourceVersion"]) > seen
                        ]
                    for event in new:
                        if cut is not None and cut <= 0:
                            return self._cut()
                        cut = None if cut is None else cut - 1
                        kind = "MODIFIED" if event.get("count", 1) > 1 else "ADDED"
                        self._chunk(json.dumps({"type": kind, "object": event}) + "\n")
                        seen = int(event["metadata"]["resourceVersion"])
                    time.sleep(0.02)
                self.wfile.write(b"0\r\n\r\n")

            def _start_stream(self, content_type):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _chunk(self, text: str):
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _cut_after(self) -> int | None:
                with fake.lock:
                    return fake.cut_streams.pop(0) if fake.cut_streams else None

            def _cut(self):
                """Close the connection mid-body, as a restarting API server or an idle proxy does."""
                self.wfile.write(b"5\r\npart")  # half a chunk
                self.wfile.flush()
                with fake.lock:
                    fake.unavailable = fake.unavailable_after_cut
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_DELETE(self):
                self.handle_any("DELETE")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                """A client that hangs up mid-answer (a watch it stops reading, a stream it
                drops) is normal, as for a real API server; anything else is kept for the
                tests (socketserver would print it into the CLI's captured output)."""
                error = sys.exc_info()[1]
                if not isinstance(error, ConnectionError):
                    fake.server_errors.append(error)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:  # HTTPS, with client certificates as the context demands
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path, user: dict | None = None, cluster: dict | None = None) -> str:
        """A kubeconfig for this API: a bearer token, unless `user` says otherwise."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url, **(cluster or {})}}],
                    "users": [{"name": "test", "user": user or {"token": "test-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "test"}}],
                }
            )
        )
        return str(path)

    # playing the operator
    def set_status(
        self,
        namespace: str,
        name: str,
        state: str,
        executors: dict | None = None,
        driver: str | None = None,
        error: str = "",
        ended: bool = False,
    ):
        with self.lock:
            app = self.apps[(namespace, name)]
            app_status = app.setdefault("status", {})
            app_status["applicationState"] = {"state": state, **({"errorMessage": error} if error else {})}
            app_status.setdefault("lastSubmissionAttemptTime", now())
            app_status["submissionAttempts"] = max(app_status.get("submissionAttempts", 0), 1)
            if executors is not None:
                app_status["executorState"] = executors
            if driver:
                app_status["driverInfo"] = {
                    "podName": driver,
                    "webUIAddress": "10.0.0.7:4040",
                    "webUIServiceName": f"{name}-ui-svc",
                    "webUIPort": 4040,
                }
                app_status["executionAttempts"] = max(app_status.get("executionAttempts", 0), 1)
                self.pods[(namespace, driver)] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": driver, "namespace": namespace},
                    "status": {"phase": "Succeeded" if ended else "Running"},
                }
            if ended:
                app_status["terminationTime"] = now()

    def service(self, namespace: str, name: str, labels: dict, annotations: dict, port: int):
        """A Service in the cluster (as the chart creates the History Server's)."""
        with self.lock:
            self.services[(namespace, name)] = {
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": now(),
                    "labels": labels,
                    "annotations": annotations,
                },
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": "10.96.0.42",
                    "selector": labels,
                    "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": "http"}],
                },
                "status": {"loadBalancer": {}},
            }

    def log(self, namespace: str, pod: str, *lines: str, close: bool = False, at: int | None = None):
        """Lines the pod writes now (or all at the time `at`, ns since the epoch)."""
        with self.lock:
            self.logs.setdefault((namespace, pod), []).extend((at or time.time_ns(), line) for line in lines)
            if close:
                self.logs_closed.add((namespace, pod))

    def event(self, namespace: str, kind: str, name: str, reason: str, message: str, type_: str = "Normal"):
        with self.lock:
            self.version += 1
            self.events.append(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "name": f"{name}.{uuid.uuid4().hex[:8]}",
                        "namespace": namespace,
                        "uid": str(uuid.uuid4()),
                        "resourceVersion": str(self.version),
                    },
                    "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
                    "reason": reason,
                    "message": message,
                    "type": type_,
                    "lastTimestamp": now(),
                    "count": 1,
                }
            )

    def repeat_event(self, index: int):
        """The event happens again: the API updates its count (a MODIFIED change to watchers)."""
        with self.lock:
            self.version += 1
            event = self.events.pop(index)
            event["count"] += 1
            event["metadata"]["resourceVersion"] = str(self.version)
            event["lastTimestamp"] = now()
            self.events.append(event)

    def compact(self):
        """Forget the history: watches from any version before the current one get 410 Gone."""
        with self.lock:
            self.oldest_version = self.version

    def created_bodies(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST" and APPS.match(path)]
