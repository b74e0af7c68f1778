"""A Server-Sent Events client on a thread, for tests and benchmarks of the sink's live API."""

from __future__ import annotations

import http.client
import queue
import socket
import threading
import time

from shellspan_sink.cli_live import SseEvent, iter_events


class SseListener:
    """GET a stream; the events received (with the time each arrived) and the raw lines
    (comments too) collect in the background."""

    def __init__(self, port: int, path: str, last_event_id: str | None = None,
                 token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request("GET", path, headers=headers)
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.events: queue.Queue[tuple[float, SseEvent]] = queue.Queue()
        self.lines: list[bytes] = []
        self.done = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.done.set()

    def _read(self) -> None:
        def lines():
            while True:
                line = self.response.readline()
                if not line:
                    return
                self.lines.append(line)
                yield line
        try:
            for event in iter_events(lines()):
                self.events.put((time.perf_counter(), event))
        except (OSError, ValueError, AttributeError):  # closed under the reader
            pass
        finally:
            self.done.set()

    def next_timed(self, kind: str | None = None, timeout: float = 30.0) -> tuple[float, SseEvent]:
        """(perf_counter time it arrived, event) of the next event of that kind."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind or 'event'} within {timeout}s")
            arrived, event = self.events.get(timeout=left)
            if kind is None or event.kind == kind:
                return arrived, event

    def next(self, kind: str | None = None, timeout: float = 30.0) -> SseEvent:
        return self.next_timed(kind, timeout)[1]

    def close(self) -> None:
        # Shut the socket down first: the reader thread's blocked read returns at once (closing
        # the response would wait for it), and the sink sees the client leave.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.done.wait(5)
        self.response.close()
        self.conn.close()
