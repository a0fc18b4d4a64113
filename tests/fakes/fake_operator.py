"""The spark-operator (kubeflow/spark-operator v2.5.2) as fruitsctl can observe it, played on
a FakeKube: each rule below is what the real controller does, and where it does it.

1. It acts only on applications in the namespaces it watches: the chart's
   `spark.jobNamespaces` (default [default]) scopes the controller's caches
   (cmd/operator/controller/start.go), so an application elsewhere never gets a status.
2. A new application is submitted with spark-submit, which creates the driver pod with the
   driver's ServiceAccount; when that fails (the account does not exist), the state is
   SUBMISSION_FAILED with the error, and the submission is retried while
   submissionAttempts <= onSubmissionFailureRetries, each after
   onSubmissionFailureRetryInterval; then FAILED (reconcileFailedSubmissionSparkApplication,
   util.ShouldRetry, internal/controller/sparkapplication/controller.go).
3. Only a submission that went through names the driver pod (status.driverInfo.podName,
   set by submitSparkApplication), so the pod and its log exist from SUBMITTED on.
4. Then RUNNING (the driver pod runs) and COMPLETED or FAILED: the only final states.

Time runs `scale` times faster than the spec's seconds, and the fake retries a failed
submission only once a client has read that state (so a test sees it, however loaded the
machine).
"""

import threading
import time

from fakes.fake_kube import FakeKube, now


class FakeOperator:
    def __init__(
        self,
        kube: FakeKube,
        job_namespaces=("default",),
        outcome: str = "COMPLETED",
        error: str = "",
        scale: float = 0.002,
        step: float = 0.05,
        after_failed_submission=None,
    ):
        self.kube, self.job_namespaces, self.outcome, self.error = kube, set(job_namespaces), outcome, error
        self.after_failed_submission = after_failed_submission  # a test's hook: what changes in the cluster then
        self.scale, self.step = scale, step
        self._due: dict[tuple[str, str], float] = {}  # when each application's next move is due
        self._reads: dict[tuple[str, str], int] = {}  # client reads when its state last changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            with self.kube.lock:
                for key, app in list(self.kube.apps.items()):
                    due = time.monotonic() >= self._due.get(key, 0)
                    failed = ((app.get("status") or {}).get("applicationState") or {}).get(
                        "state"
                    ) == "SUBMISSION_FAILED"
                    seen = not failed or self.kube.reads.get(key, 0) > self._reads.get(key, -1)
                    if key[0] in self.job_namespaces and due and seen:  # rule 1
                        self._reconcile(key, app)
                        self._reads[key] = self.kube.reads.get(key, 0)

    def _set(self, app: dict, state: str, error: str = "") -> None:
        app.setdefault("status", {})["applicationState"] = {
            "state": state,
            **({"errorMessage": error} if error else {}),
        }

    def _reconcile(self, key: tuple[str, str], app: dict) -> None:
        namespace, name = key
        status = app.setdefault("status", {})
        state = (status.get("applicationState") or {}).get("state", "NEW")
        policy = app["spec"].get("restartPolicy", {})
        if state in ("NEW", "SUBMISSION_FAILED"):
            if state == "SUBMISSION_FAILED" and status["submissionAttempts"] > policy.get(
                "onSubmissionFailureRetries", 0
            ):
                self._set(app, "FAILED", status["applicationState"].get("errorMessage", ""))  # rule 2: retries spent
                status["terminationTime"] = now()
                return
            status["submissionAttempts"] = status.get("submissionAttempts", 0) + 1
            status["lastSubmissionAttemptTime"] = now()
            account = app["spec"]["driver"].get("serviceAccount", "default")
            if (namespace, account) not in self.kube.service_accounts:  # rule 2
                self._set(
                    app,
                    "SUBMISSION_FAILED",
                    f'failed to run spark-submit: pods "{name}-driver" is forbidden: '
                    f"error looking up service account {namespace}/{account}: "
                    f'serviceaccount "{account}" not found',
                )
                interval = policy.get("onSubmissionFailureRetryInterval", 5)
                self._due[key] = time.monotonic() + interval * self.scale
                if self.after_failed_submission:
                    self.after_failed_submission()
                return
            driver = f"{name}-driver"  # rule 3
            status["driverInfo"] = {"podName": driver}
            self.kube.pods[(namespace, driver)] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": driver, "namespace": namespace},
                "status": {"phase": "Pending"},
            }
            self._set(app, "SUBMITTED")
        elif state == "SUBMITTED":  # rule 4
            self.kube.pods[(namespace, status["driverInfo"]["podName"])]["status"]["phase"] = "Running"
            status["executionAttempts"] = status.get("executionAttempts", 0) + 1
            status["executorState"] = {f"{name}-exec-1": "RUNNING"}
            self.kube.log(namespace, status["driverInfo"]["podName"], "Fruits! job: featurize ...")
            self._set(app, "RUNNING")
        elif state == "RUNNING":
            pod = status["driverInfo"]["podName"]
            self.kube.pods[(namespace, pod)]["status"]["phase"] = (
                "Succeeded" if self.outcome == "COMPLETED" else "Failed"
            )
            self.kube.log(namespace, pod, f"run {self.outcome.lower()}", close=True)
            status["executorState"] = {f"{name}-exec-1": self.outcome}
            status["terminationTime"] = now()
            self._set(app, self.outcome, self.error)
        self._due[key] = time.monotonic() + self.step
