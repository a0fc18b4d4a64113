"""Live image counts from the Python workers to the driver's progress bar, over UDP.

Spark reports a task's own figures only when it ends, and the images never pass through
the JVM, whose input counters would say how far a task is. So in local runs,
where `fruitsctl run` draws a bar, each worker sends "n more images" datagrams to a socket
the driver opens on the loopback address. Best effort by design: a lost datagram only
makes the bar lag until the stage ends, and nothing else depends on it.
"""

import secrets
import socket
import threading
from typing import NamedTuple


class ImageCounterAddress(NamedTuple):
    host: str
    port: int
    token: bytes  # datagrams without it (another program's) are ignored


class ImageCounter:
    """The driver's side: counts the images reported to `address` until closed."""

    def __init__(self, host: str = "127.0.0.1"):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.settimeout(0.2)
        self.address = ImageCounterAddress(host, self._socket.getsockname()[1], secrets.token_bytes(8))
        self.count = 0  # images reported
        self.reports = 0  # datagrams counted: one per batch of images a worker finished
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        token = self.address.token
        while not self._closed.is_set():
            try:
                data = self._socket.recv(64)
            except (TimeoutError, OSError):
                continue
            if data[: len(token)] == token and data[len(token) :].isdigit():
                self.count += int(data[len(token) :])
                self.reports += 1

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._socket.close()


class ImageReporter:
    """A worker's side: reports images done; does nothing without an address."""

    def __init__(self, address: ImageCounterAddress | None):
        self._address = address
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if address else None

    def images(self, count: int) -> None:
        if self._socket:
            assert self._address is not None  # a socket is opened only for an address
            try:
                self._socket.sendto(self._address.token + str(count).encode(), self._address[:2])
            except OSError:
                pass  # progress is best effort
