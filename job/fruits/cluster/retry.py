"""Asking the Kubernetes API again while it cannot answer (a blip, a control-plane upgrade, a
dropped stream): doubling delays up to RETRY_MAX_S, for at most API_OUTAGE_LIMIT_S in a row.
Waiting, following a log and watching events share this one policy.

Not tenacity: its decorators retry one call, while these loops resume a stream and tell the
user when an outage starts and ends; and importing it costs ~50 ms of fruitsctl's ~0.2 s start.
"""

import time

API_OUTAGE_LIMIT_S = 120.0
RETRY_MAX_S = 10.0


class Outage:
    """One stretch of failed tries. `wait()` sleeps before the next try and returns True, or
    returns False once another try would pass the limit; an answer calls `end()`."""

    def __init__(self, first_delay_s: float = 0.5):
        self.first_delay_s = first_delay_s
        self.end()

    def end(self) -> None:
        self.started: float | None = None
        self.delay_s = self.first_delay_s

    @property
    def ongoing(self) -> bool:
        return self.started is not None

    def wait(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if now - self.started + self.delay_s > API_OUTAGE_LIMIT_S:  # read at call time: tests shorten it
            return False
        time.sleep(self.delay_s)
        self.delay_s = min(self.delay_s * 2, RETRY_MAX_S)
        return True
