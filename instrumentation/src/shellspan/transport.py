"""Sending OTLP/HTTP requests: the sender, the outcome of a send, and when to send again.

``HttpSender.send`` POSTs one encoded OTLP export request (traces or logs) and classifies the answer as
OTLP clients must (``Outcome``): accepted; worth retrying (no answer at all, or HTTP 429, 502,
503, 504, possibly with ``Retry-After``); or never to be retried (any other status).

``CircuitBreaker`` decides when to send again after a failure, and tells two failures apart:

* an endpoint that does not answer (refused, reset, timed out) is *probed*: no batch is sent to
  it, but a cheap empty request goes out every ``probe_s`` seconds (the caller probes only while
  it has something to deliver), and the first answer closes the breaker, so a sink that comes
  back is used again about a second later;
* an endpoint that answers and refuses (overloaded: 429/502/503/504) is *backed off*: it is left
  alone for ``Retry-After`` seconds when it says so, else for an exponentially growing delay, and
  is not probed (probing would only add to its load).

Loading this module imports ``enum`` and ``time`` only (an interactive interpreter has both before
its first prompt); ``http.client`` is imported by the first send, on the export thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ms at start-up
if TYPE_CHECKING:  # pragma: no cover
    from shellspan.config import Config

RETRYABLE_STATUSES = (429, 502, 503, 504)


class Outcome(Enum):
    """What a send came to."""

    OK = "ok"  # accepted (2xx)
    RETRYABLE = "retryable"  # no answer, or an answer that asks to try again later
    PERMANENT = "permanent"  # refused for good (bad data, bad token...): do not send it again


class SendResult:
    """The outcome of one send, with the HTTP status (0: no answer) and ``Retry-After``."""

    __slots__ = ("outcome", "status", "retry_after", "error")

    def __init__(self, outcome: Outcome, status: int = 0, retry_after: float | None = None,
                 error: str = "") -> None:
        self.outcome, self.status, self.retry_after, self.error = outcome, status, retry_after, error

    @property
    def answered(self) -> bool:
        """The endpoint answered with an HTTP status (whatever it was)."""
        return self.status != 0

    def describe(self) -> str:
        return self.error or f"HTTP {self.status}"

    def __repr__(self) -> str:
        return f"SendResult({self.outcome.value}, {self.status}, {self.error!r})"


def classify(status: int, retry_after: str | None = None) -> SendResult:
    """The outcome of an HTTP answer, by the OTLP rules."""
    if 200 <= status < 300:
        return SendResult(Outcome.OK, status)
    if status in RETRYABLE_STATUSES:
        delay = None
        if retry_after:
            try:
                delay = max(float(retry_after), 0.0)
            except ValueError:  # an HTTP date: not worth parsing, the back-off applies
                delay = None
        return SendResult(Outcome.RETRYABLE, status, delay)
    return SendResult(Outcome.PERMANENT, status)


class HttpSender:
    """POST OTLP/protobuf bodies to one endpoint over one kept-alive connection."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, *,
                 timeout_s: float = 3.0, gzip: bool = False,
                 token: Callable[[], dict[str, str]] | None = None) -> None:
        # Imported here, not at the first send: an exporter counts as set up (worth waiting
        # for at exit) only once its sender exists, i.e. once these imports are done.
        import http.client  # noqa: F401
        from urllib.parse import urlsplit

        u = urlsplit(endpoint)
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.https else 80)
        self.path = (u.path or "/v1/traces") + (f"?{u.query}" if u.query else "")
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.gzip = gzip
        self.token = token
        self._conn = None

    def _connection(self, timeout: float):
        import http.client

        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None

    def send(self, body: bytes, timeout_s: float | None = None) -> SendResult:
        """POST one request body; never raises."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        headers = {"Content-Type": "application/x-protobuf", **self.headers}
        if self.token is not None:
            headers.update(self.token())
        if self.gzip:
            import gzip

            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        for attempt in (0, 1):  # one silent reconnect if a kept-alive connection went stale
            try:
                conn = self._connection(timeout)
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return classify(resp.status, resp.getheader("Retry-After"))
            except (ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt:
                    return SendResult(Outcome.RETRYABLE, error=repr(exc))
            except Exception as exc:  # noqa: BLE001 - refused, timeout, DNS...: all retryable
                self.close()
                return SendResult(Outcome.RETRYABLE, error=repr(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def probe(self, timeout_s: float = 1.0) -> SendResult:
        """Send an empty request (no spans: nothing is stored): does the endpoint answer?"""
        return self.send(b"", timeout_s)


def sender_for(config: Config, signal: str = "traces") -> HttpSender:
    """The sender a shell uses for a signal (``traces`` or ``logs``): the configured endpoint,
    headers, compression and token."""
    from shellspan.auth import TokenSource
    from shellspan.config import parse_kv_list

    endpoint, headers, compression = config.signal(signal)
    tokens = TokenSource.from_config(config)
    return HttpSender(endpoint, parse_kv_list(headers), timeout_s=config.send_timeout_s,
                      gzip=compression == "gzip", token=tokens.header)


class CircuitBreaker:
    """When to send again after a failure: probe an endpoint that does not answer, back off
    from one that answers and refuses (see the module's docstring)."""

    CLOSED, PROBING, BACKING_OFF = "closed", "probing", "backing off"

    def __init__(self, *, probe_s: float = 1.0, base_s: float = 2.0, max_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_s, self.base_s, self.max_s = probe_s, base_s, max_s
        self.clock = clock
        self.state = self.CLOSED
        self.failures = 0  # failures in a row
        self.refusals = 0  # of which answered refusals (the exponent of the back-off)
        self.next_at = 0.0  # when the next probe (probing) or send (backing off) may go

    def allow(self) -> bool:
        """Whether a batch may be sent now."""
        return self.state == self.CLOSED or (self.state == self.BACKING_OFF
                                             and self.clock() >= self.next_at)

    def probe_due(self) -> bool:
        return self.state == self.PROBING and self.clock() >= self.next_at

    def defer_probe(self) -> None:
        """Nothing to deliver now: look again in ``probe_s``."""
        if self.state == self.PROBING:
            self.next_at = self.clock() + self.probe_s

    def wait_s(self) -> float | None:
        """Seconds until ``allow`` or ``probe_due`` may become true; None when closed."""
        if self.state == self.CLOSED:
            return None
        return max(self.next_at - self.clock(), 0.0)

    def record(self, result: SendResult) -> bool:
        """Take in the result of a send or probe; True when it closed an open breaker."""
        if result.outcome is not Outcome.RETRYABLE:  # an answer: the endpoint works
            was_open = self.state != self.CLOSED
            self.state, self.failures, self.refusals, self.next_at = self.CLOSED, 0, 0, 0.0
            return was_open
        self.failures += 1
        if result.answered:  # it answers, and asks us to wait
            self.refusals += 1
            delay = result.retry_after
            if delay is None:
                delay = self.base_s * 2 ** min(self.refusals - 1, 20)
            self.state, self.next_at = self.BACKING_OFF, self.clock() + min(delay, self.max_s)
        else:
            self.state, self.next_at = self.PROBING, self.clock() + self.probe_s
        return False
