"""fruitsctl's cluster commands: render, submit, status, list, logs, events, delete, ui."""

import json
import shlex
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from fruits.cli.console import (
    apps_table,
    console,
    event_line,
    events_table,
    print_error,
    print_note,
    print_warning,
    state_line,
    status_table,
    styled,
)
from fruits.cluster import history_server as history_servers
from fruits.cluster import retry, states
from fruits.cluster.api_errors import TransientApiError, operator_hint
from fruits.cluster.cluster_config import ClusterConfig
from fruits.cluster.retry import Outage
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError

if TYPE_CHECKING:
    from fruits.cluster.kube import Kube

KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file [default: $KUBECONFIG or ~/.kube/config; in a pod: its service account].",
        rich_help_panel="Kubernetes",
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option("--context", help="Kubeconfig context [default: the current one].", rich_help_panel="Kubernetes"),
]
NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", help="Kubernetes namespace.", rich_help_panel="Kubernetes")
]
FormatOption = Annotated[str | None, typer.Option("--format", "-o", help="Print the object as yaml or json.")]
NameArgument = Annotated[str, typer.Argument(help="SparkApplication name (see `fruitsctl list`).", metavar="NAME")]


def _kube(kubeconfig: str | None, context: str | None) -> "Kube":
    """The cluster's API, imported per command: the Kubernetes client costs ~0.4 s to import."""
    from fruits.cluster.kube import Kube

    return Kube(kubeconfig, context)


def _reader(kubeconfig: str | None, context: str | None):
    """For the commands that only read: plain reads where the kubeconfig allows
    (fruits.cluster.reads: fruitsctl starts without the official client), else the client."""
    from fruits.cluster.reads import connect

    return connect(kubeconfig, context) or _kube(kubeconfig, context)


def _dump(obj, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=2, default=str)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    raise UserError(f"--format must be yaml or json; got {fmt!r}.")


def _manifest(config: JobConfig, cluster: ClusterConfig) -> dict:
    if not config.input or not config.output:
        raise UserError("A cluster run needs --input and --output (s3a:// paths the pods can reach).")
    if config.s3_credentials == "static" and not cluster.s3_secret:
        raise UserError(
            "--s3-credentials static needs --s3-secret NAME: a Secret with AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY that the pods read their keys from (or use --s3-credentials irsa)."
        )
    from fruits.cluster.spark_application import spark_application  # per command, as every library here

    return spark_application(config, cluster)


def render(
    config: JobConfig,
    cluster: ClusterConfig,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
) -> None:
    """Print the SparkApplication that `submit` would create (for review or GitOps)."""
    print(_dump(_manifest(config, cluster), fmt), end="" if fmt == "yaml" else "\n")


# How long an application may sit without any status before `--wait` says why it may never
# get one (no operator watches its namespace).
NO_STATUS_WARNING_S = 60.0
DRIVER_POD_POLL_S = 2.0  # `logs -f` before the driver pod exists


def _app_through_outages(kube: "Kube", namespace: str, name: str, poll: float) -> dict:
    """kube.get_app, asked again while the API server cannot answer (fruits.cluster.retry)."""
    outage = Outage(first_delay_s=max(poll, 0.05))
    while True:
        try:
            app = kube.get_app(namespace, name)
            if outage.ongoing:
                print_note("The Kubernetes API answers again.")
            return app
        except TransientApiError as exc:
            if not outage.ongoing:
                print_warning(f"{exc} Asking again for up to {retry.API_OUTAGE_LIMIT_S:.0f} s.")
            if not outage.wait():
                raise UserError(
                    f"{exc} (no answer for {retry.API_OUTAGE_LIMIT_S:.0f} s; the run goes on: follow "
                    f"it with `fruitsctl wait {name} -n {namespace}`)"
                ) from None


def follow(kube: "Kube", namespace: str, name: str, timeout: float, poll: float, logs: bool) -> int:
    """Show state changes until the app ends (COMPLETED or FAILED); returns the exit code."""
    started = time.monotonic()
    deadline, last, log_thread, warned = started + timeout, None, None, False
    while True:
        app = _app_through_outages(kube, namespace, name, poll)
        state, executors = states.state(app), states.executor_counts(app)
        if (state, executors) != last:
            console.print(state_line(app))
            last = (state, executors)
        if not warned and not states.has_status(app) and time.monotonic() - started > NO_STATUS_WARNING_S:
            print_warning(
                f"{name} has no status after {NO_STATUS_WARNING_S:.0f} s: no spark-operator seems to watch "
                f"namespace {namespace!r}. Install or reconfigure it: {operator_hint(namespace)}."
            )
            warned = True
        if state == "SUBMISSION_FAILED" and states.error_message(app):
            print_note(f"submission failed (the operator retries): {states.error_message(app)}")
        pod = states.driver_pod(app)
        if logs and log_thread is None and pod and state not in ("NEW", "SUBMITTED", "SUBMISSION_FAILED"):

            def stream(pod=pod):
                for line in kube.follow_pod_log(namespace, pod):
                    console.print(styled(("driver | ", "dim"), line), soft_wrap=True)

            log_thread = threading.Thread(target=stream, daemon=True)
            log_thread.start()
        if states.is_final(app):
            if log_thread:
                log_thread.join(timeout=30)
            if states.error_message(app):
                print_error(states.error_message(app))
            return states.exit_code(app)
        if time.monotonic() > deadline:
            print_error(
                f"Timed out after {timeout:.0f} s with {name} still {state}: it keeps running; "
                f"follow it with `fruitsctl wait {name} -n {namespace}`."
            )
            return states.EXIT_TIMEOUT
        time.sleep(poll)


def submit(
    config: JobConfig,
    cluster: ClusterConfig,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run until it ends; exit 0 only on COMPLETED.")
    ] = False,
    logs: Annotated[
        bool, typer.Option("--logs", help="Stream the driver's log once it starts (implies --wait).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds (exit 5).")] = 6 * 3600,
    poll: Annotated[float, typer.Option(help="Seconds between status checks while waiting.")] = 5.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Create the SparkApplication; with --wait follow it to its end.

    Exit codes: 0 COMPLETED, 3 FAILED, 4 FAILED without any submission getting through,
    5 timed out, 2 user error."""
    body = _manifest(config, cluster)
    kube = _kube(kubeconfig, context)
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    kube.check_submission(namespace, cluster.service_account, cluster.executor_service_account)
    kube.create_app(body)
    console.print(styled("Created SparkApplication ", (name, "bold"), f" in namespace {namespace}."))
    if not (wait or logs):
        print_note(f"Follow it with: fruitsctl wait {name} -n {namespace} --logs")
        return
    raise typer.Exit(follow(kube, namespace, name, timeout, poll, logs))


TimeoutOption = Annotated[float, typer.Option(help="Give up waiting after this many seconds (exit 5).")]
PollOption = Annotated[float, typer.Option(help="Seconds between status checks while waiting.")]


def wait(
    name: NameArgument,
    logs: Annotated[bool, typer.Option("--logs", help="Stream the driver's log once it starts.")] = False,
    timeout: TimeoutOption = 6 * 3600,
    poll: PollOption = 5.0,
    namespace: NamespaceOption = "default",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Follow a run (submitted by fruitsctl, Helm or GitOps) until it ends (exit codes as submit --wait)."""
    raise typer.Exit(follow(_kube(kubeconfig, context), namespace, name, timeout, poll, logs))


def status(
    name: NameArgument,
    namespace: NamespaceOption = "default",
    fmt: FormatOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """State, attempts, driver pod, UI address, executors and error message of a run."""
    app = _reader(kubeconfig, context).get_app(namespace, name)
    if fmt:
        print(_dump(app, fmt))
    else:
        console.print(status_table(app))
    raise typer.Exit(0)


def list_apps(
    namespace: NamespaceOption = "default",
    fmt: FormatOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """The pipeline's runs in the namespace: name, state, age, duration."""
    from fruits.cluster.spark_application import APP_LABEL, APP_NAME

    apps = _reader(kubeconfig, context).list_apps(namespace, f"{APP_LABEL}={APP_NAME}")
    apps.sort(key=lambda a: a["metadata"].get("creationTimestamp") or "", reverse=True)
    if fmt:
        print(_dump(apps, fmt))
    elif not apps:
        print_note(f"No runs in namespace {namespace!r}.")
    else:
        console.print(apps_table(apps))


def logs(
    name: NameArgument,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(help="S3 endpoint for a kept log (default: $AWS_ENDPOINT_URL, else the run's own)."),
    ] = None,
    namespace: NamespaceOption = "default",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """The driver's log (-f: follow it, waiting for the driver pod first).

    The driver pod exists only once the operator has submitted the run; once it is gone, the
    log the run kept under its output's _logs/ is shown instead."""
    kube = _kube(kubeconfig, context)
    app = kube.get_app(namespace, name)
    waited = False
    while not states.driver_pod(app) and follow_ and not states.is_final(app):
        if not waited:
            print_note(f"{name} is {states.state(app)}: waiting for its driver pod ...")
            waited = True
        time.sleep(DRIVER_POD_POLL_S)
        app = kube.get_app(namespace, name)
    pod = states.driver_pod(app)
    if not pod and not states.is_final(app):
        raise UserError(
            f"{name} has no driver pod (state {states.state(app)}): `fruitsctl wait {name} --logs` "
            "follows it from submission on."
        )
    if not pod or (states.is_final(app) and kube.pod_phase(namespace, pod) is None):
        from fruits.cluster.kept_logs import newest_kept_log

        where, lines = newest_kept_log(app, s3_endpoint)
        print_note(f"The driver pod of {name} is gone (state {states.state(app)}): its log kept in {where}")
    else:
        lines = kube.follow_pod_log(namespace, pod) if follow_ else kube.pod_log(namespace, pod)
    for line in lines:
        print(line)


def events(
    name: NameArgument,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep watching.")] = False,
    poll: Annotated[float, typer.Option(help="With --follow: seconds between checks whether the run ended.")] = 3.0,
    namespace: NamespaceOption = "default",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Kubernetes events of the run and its pods (scheduling, image pulls, OOM kills ...)."""
    kube = _kube(kubeconfig, context)
    kube.get_app(namespace, name)  # a clear error if there is no such run
    if not follow_:
        found = kube.events(namespace, name)
        if found:
            console.print(events_table(found))
        else:
            print_note(f"No events for {name} (Kubernetes keeps events for about an hour).")
        return
    for fresh in kube.watch_events(namespace, name, window_s=max(1, round(poll))):
        for event in fresh:
            console.print(event_line(event), soft_wrap=True)
        if not fresh and states.is_final(_app_through_outages(kube, namespace, name, poll)):
            return


def delete(
    name: NameArgument,
    namespace: NamespaceOption = "default",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Delete the run's SparkApplication (the operator removes its pods; S3 results stay)."""
    _kube(kubeconfig, context).delete_app(namespace, name)
    console.print(styled("Deleted SparkApplication ", (name, "bold"), f" from namespace {namespace}."))


def ui(
    name: NameArgument,
    port: Annotated[int, typer.Option(help="Local port.")] = 4040,
    history_server: Annotated[
        str | None,
        typer.Option(
            "--history-server",
            metavar="[NAMESPACE/]SERVICE",
            help="The History Server's Service for a finished run [default: the chart's, found by its labels "
            "in --namespace, reading the run's event-log directory].",
        ),
    ] = None,
    print_command: Annotated[bool, typer.Option("--print-command", help="Only print the kubectl command.")] = False,
    namespace: NamespaceOption = "default",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Open the run's Spark UI on localhost: the driver's while it runs, its page on the History
    Server once it has ended (port-forward through kubectl, as sparkctl forward did)."""
    kube = _kube(kubeconfig, context)
    app = kube.get_app(namespace, name)
    pod = states.driver_pod(app)
    if pod and kube.pod_phase(namespace, pod) == "Running":
        target, target_namespace, remote_port = f"pod/{pod}", namespace, 4040
        where = styled(f"Spark UI of {name}: ", (f"http://localhost:{port}", "bold"))
    else:
        service = _history_server_of(kube, app, name, namespace, history_server)
        target, target_namespace = f"service/{service['metadata']['name']}", service["metadata"]["namespace"]
        remote_port = history_servers.service_port(service)
        where = styled(
            f"The driver of {name} has ended ({states.state(app)}): its Spark UI is on the History Server {target}: ",
            (history_servers.application_page(port, states.spark_app_id(app) or ""), "bold"),
        )
    command = ["kubectl", "port-forward", target, f"{port}:{remote_port}", "--namespace", target_namespace]
    command += ["--context", context] if context else []
    command += ["--kubeconfig", kubeconfig] if kubeconfig else []
    if print_command:
        print(shlex.join(command), flush=True)
        print_note(where.plain)  # on stderr: stdout holds the command alone
        return
    import shutil
    import subprocess

    if not shutil.which("kubectl"):
        raise UserError(
            "`fruitsctl ui` needs kubectl on the PATH: install it (https://kubernetes.io/docs/tasks/tools/)."
        )
    console.print(where, "  (Ctrl-C to stop)", sep="", soft_wrap=True)
    raise typer.Exit(subprocess.call(command))


def _history_server_of(kube: "Kube", app: dict, name: str, namespace: str, named: str | None) -> dict:
    """The History Server Service that shows the ended run `app`: the one named, or the chart's
    reading the run's event-log directory."""
    if not states.spark_app_id(app):
        raise UserError(
            f"The driver of {name} is not running (state {states.state(app)}) and has not started Spark yet: "
            f"there is no Spark UI to open; `fruitsctl wait {name}` follows it."
        )
    log_dir = history_servers.event_log_dir(app)
    if not log_dir:
        raise UserError(
            f"The driver of {name} is not running (state {states.state(app)}) and it wrote no Spark event log, "
            "so no History Server can show it: give runs --event-log-dir (the chart's cluster.eventLogDir)."
        )
    if named:
        service_namespace, _, service = named.rpartition("/")
        return kube.get_service(service_namespace or namespace, service)
    found = history_servers.reading(kube.list_services(namespace, history_servers.SELECTOR), log_dir)
    if not found:
        raise UserError(
            f"The driver of {name} is not running (state {states.state(app)}) and no History Server in namespace "
            f"{namespace!r} reads its event logs ({log_dir}): deploy one with the chart's historyServer.enabled=true "
            "(historyServer.logDirectory or cluster.eventLogDir the same), or name its Service with --history-server."
        )
    return found[0]
