"""A TCP proxy in front of a server (moto, for the storage fault tests) that can stall: while
paused it keeps every connection open and passes no byte either way, as an S3 endpoint behind
a congested or partitioned network does; new connections are accepted and wait too.

    with StallingProxy("127.0.0.1", moto_port) as proxy:   # proxy.endpoint: http://127.0.0.1:N
        proxy.pause(25)                                      # from now, 25 s of silence
"""

import socket
import threading
import time


class StallingProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._paused_until = 0.0
        self._closed = threading.Event()
        self.connections = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def pause(self, seconds: float) -> None:
        self._paused_until = time.monotonic() + seconds

    def __enter__(self) -> "StallingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _wait_while_paused(self) -> None:
        while (left := self._paused_until - time.monotonic()) > 0 and not self._closed.is_set():
            time.sleep(min(left, 0.05))

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                self._wait_while_paused()
                data = source.recv(65536)
                if not data:
                    break
                self._wait_while_paused()  # data read just before a pause is held back too
                sink.sendall(data)
        except OSError:
            pass  # either side hung up
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
