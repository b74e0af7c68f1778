"""Off-thread OTLP/HTTP export with a circuit breaker, a bounded exit flush and the spool.

The shell's thread only appends finished spans to a list (``Exporter.submit``); a daemon thread
encodes and POSTs them (``http.client``, short timeouts, no retry loop of its own). A batch that
cannot be sent — endpoint down, black-holed, overloaded — goes to the on-disk spool, and the
spool is drained whenever the endpoint answers again (by this process or any later one).
``Exporter.flush(budget)`` waits at most ``budget`` seconds and then spools whatever is left, so
a shell's exit never waits longer than that on the network. The module imports only ``os``,
``sys``, ``threading`` (and ``_thread``) and ``time`` at load; everything else is imported on
the export thread.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time
from collections.abc import Callable

from shellspan import __version__
from shellspan import semconv as sc
from shellspan.config import Config
from shellspan.otlp import AttrValue, SpanData, encode_request
from shellspan.spool import Spool

OK, RETRYABLE, PERMANENT = "ok", "retryable", "permanent"


class SendResult:
    __slots__ = ("outcome", "status", "retry_after", "error")

    def __init__(self, outcome: str, status: int = 0, retry_after: float | None = None,
                 error: str = "") -> None:
        self.outcome, self.status, self.retry_after, self.error = outcome, status, retry_after, error

    def __repr__(self) -> str:
        return f"SendResult({self.outcome}, {self.status}, {self.error!r})"


class HttpSender:
    """POST OTLP/protobuf bodies to one endpoint; classifies answers as OTLP clients must."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, *,
                 timeout_s: float = 3.0, gzip: bool = False,
                 token: Callable[[], dict[str, str]] | None = None) -> None:
        import http.client  # noqa: F401 - imported here, on the export thread
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
                status = resp.status
                retry_after = resp.getheader("Retry-After")
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                break
            except (ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt:
                    return SendResult(RETRYABLE, error=repr(exc))
            except Exception as exc:  # noqa: BLE001 - refused, timeout, DNS...: all retryable
                self.close()
                return SendResult(RETRYABLE, error=repr(exc))
        if 200 <= status < 300:
            return SendResult(OK, status)
        delay = None
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = None
        if status in (429, 502, 503, 504):
            return SendResult(RETRYABLE, status, delay)
        return SendResult(PERMANENT, status)


class CircuitBreaker:
    """Stop hammering a dead endpoint: open after ``threshold`` failures, back off exponentially."""

    def __init__(self, threshold: int = 2, base_s: float = 2.0, max_s: float = 300.0) -> None:
        self.threshold, self.base_s, self.max_s = threshold, base_s, max_s
        self.failures = 0
        self.open_until = 0.0

    def allow(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.open_until

    def success(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def failure(self, retry_after: float | None = None) -> None:
        self.failures += 1
        if retry_after is not None:
            self.open_until = time.monotonic() + min(retry_after, self.max_s)
        elif self.failures >= self.threshold:
            delay = min(self.base_s * 2 ** (self.failures - self.threshold), self.max_s)
            self.open_until = time.monotonic() + delay

    @property
    def is_open(self) -> bool:
        return not self.allow()


def default_resource(config: Config) -> dict[str, AttrValue]:
    res: dict[str, AttrValue] = {
        sc.SERVICE_NAME: config.service_name,
        sc.TELEMETRY_SDK_NAME: "shellspan",
        sc.TELEMETRY_SDK_LANGUAGE: "python",
        sc.TELEMETRY_SDK_VERSION: __version__,
        sc.HOST_NAME: os.uname().nodename,
    }
    if config.resource_attributes_raw:
        from shellspan.config import parse_kv_list

        extra = parse_kv_list(config.resource_attributes_raw)
        if sc.SERVICE_NAME in extra and os.environ.get("OTEL_SERVICE_NAME"):
            extra.pop(sc.SERVICE_NAME)  # OTEL_SERVICE_NAME wins, as in the SDKs
        res.update(extra)
    return res


class Exporter:
    """Process-wide export pipeline: pending spans → background sender → spool on failure."""

    def __init__(self, config: Config | None = None, *, subject: str = "") -> None:
        self.config = config or Config()
        self.spool = Spool(self.config.spool_dir, max_bytes=self.config.spool_max_bytes,
                           max_files=self.config.spool_max_files)
        self.subject = subject
        self.resource = None  # built on the export thread
        self.breaker = CircuitBreaker()
        self.stats = {"sent_spans": 0, "spooled_batches": 0, "resent_batches": 0,
                      "rejected_batches": 0, "errors": 0}
        self.last_error = ""
        self.last_success = 0.0  # time.time() of the last batch the endpoint accepted
        self._lock = threading.Lock()
        self._pending: list[SpanData] = []
        self._inflight: list[SpanData] | None = None
        self._inflight_gen = 0
        self._abandoned_gen = -1
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._go = threading.Event()  # the shell is ready (first prompt) or is exiting
        self._exiting = threading.Event()
        self._last_outcome = ""
        self._periodic: list[tuple[float, Callable[[], SpanData | None], list[float]]] = []
        self._started = False  # start() was called
        self._spawned = False  # the export thread was started
        self._alive = False  # the export thread is running
        self._sender: HttpSender | None = None

    # --- shell thread side -------------------------------------------------------------------

    def start(self, *, wait_for_ready: bool = False) -> None:
        """Start the export thread. With ``wait_for_ready`` the thread is started by ``ready()``
        (the shell is about to wait for input at its first prompt) or, failing that, by the next
        span submitted (it then idles for up to 1 s): a thread started earlier competes with the
        shell's own start-up for the GIL and, on a busy machine, for the CPU."""
        if self._started:
            return
        self._started = True
        if not wait_for_ready:
            self._go.set()
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            if self._spawned:
                return
            self._spawned = self._alive = True
        # A daemon thread without threading.Thread.start()'s wait for the new thread to run,
        # which on a loaded machine can cost the shell a scheduling delay.
        _thread.start_new_thread(self._run, ())

    def ready(self) -> None:
        self._go.set()
        if self._started:
            self._spawn()

    def submit(self, span: SpanData) -> None:
        """Queue a finished span; never blocks on the network."""
        with self._lock:
            self._pending.append(span)
            self._idle.clear()
        self._wake.set()
        if self._started and not self._spawned:
            self._spawn()

    def add_periodic(self, interval_s: float, make: Callable[[], SpanData | None]) -> None:
        """Call ``make`` every ``interval_s`` on the export thread and export what it returns."""
        self._periodic.append((interval_s, make, [time.monotonic() + interval_s]))
        self._wake.set()

    def clear_periodic(self) -> None:
        self._periodic.clear()

    def flush(self, budget_s: float | None = None) -> bool:
        """Wait up to ``budget_s`` for pending spans to be sent; spool what is left.

        Returns True when everything was sent (or spooled by the export thread itself).
        With the default (exit) budget, an export thread that has not set itself up yet (a shell
        that exits within a fraction of a second of its first prompt) is not waited for: its
        imports alone take longer than the budget, so the spans are spooled at once."""
        budget = self.config.exit_budget_s if budget_s is None else budget_s
        wait = self._alive and (self._sender is not None or budget_s is not None)
        if wait:
            self._signal_exit()
            if self._idle.wait(budget):
                return True
        with self._lock:
            left = list(self._inflight or []) + self._pending
            self._abandoned_gen = self._inflight_gen
            self._pending = []
            self._idle.set()
        if not wait:  # only now, so that the thread finds nothing to set itself up for
            self._signal_exit()
        if left:
            if self.resource is None:
                self.resource = default_resource(self.config)
            path = self.spool.write(encode_request(left, self.resource, "shellspan", __version__))
            self.stats["spooled_batches"] += 1
            if path and self.config.exit_handoff and not self.breaker.is_open:
                if self._last_outcome == OK:
                    self._handoff([path], 15.0)  # the endpoint works, it is only slow
                elif not self._last_outcome and not self.breaker.failures:
                    self._handoff([path], 5.0)  # never tried (a quick exit): a few attempts
        return not left

    def _signal_exit(self) -> None:
        self._exiting.set()
        self._go.set()
        self._wake.set()

    def _handoff(self, paths: list[str], deadline_s: float) -> None:
        """Send what the exit flush spooled from a detached helper process (``shellspan spool
        send``), so a slow but working endpoint does not make the shell's exit wait. The helper
        is spawned (not forked: a fork could inherit a lock held by the export thread), owns no
        terminal, and gives up after a few seconds; what it cannot send stays in the spool."""
        try:
            null = os.devnull
            os.posix_spawn(sys.executable,
                           [sys.executable, "-m", "shellspan.cli", "spool", "send",
                            f"--deadline={deadline_s}", *paths],
                           dict(os.environ),
                           file_actions=[(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
                                         (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                                         (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0)],
                           setsid=True)
        except (OSError, AttributeError, TypeError):
            pass  # stays in the spool for the next session

    def send_files(self, paths: list[str], deadline_s: float = 15.0) -> int:
        """Send the given spool entries, retrying until ``deadline_s``; returns how many went."""
        if self._sender is None:
            self._setup()
        deadline = time.monotonic() + deadline_s
        todo = list(paths)
        delay, sent, first = 0.2, 0, True
        while todo and (first or time.monotonic() < deadline):
            first = False
            path = todo.pop(0)
            claimed = path + ".claimed-" + str(os.getpid())
            try:
                os.rename(path, claimed)
                with open(claimed, "rb") as f:
                    body = f.read()
            except OSError:
                continue  # somebody else is sending it
            result = self._sender.send(body, timeout_s=3.0)
            if result.outcome == RETRYABLE:
                self.spool.release(claimed)
                todo.append(path)
                time.sleep(min(result.retry_after or delay, 5.0))
                delay = min(delay * 2, 3.0)
            else:
                self.spool.ack(claimed)
                sent += result.outcome == OK
        return sent

    # --- export thread -----------------------------------------------------------------------

    def _debug(self, msg: str) -> None:
        if self.config.debug:
            sys.stderr.write(f"[shellspan] {msg}\n")

    def _setup(self) -> None:
        from shellspan.auth import TokenSource
        from shellspan.config import parse_kv_list
        from shellspan.redact import default_redactor

        if not self._exiting.is_set():
            default_redactor()  # compile the patterns here rather than at the first command

        if self.resource is None:
            self.resource = default_resource(self.config)
        cfg = self.config
        tokens = TokenSource.from_config(cfg)
        self._sender = HttpSender(cfg.endpoint, parse_kv_list(cfg.headers_raw),
                                  timeout_s=cfg.send_timeout_s, gzip=cfg.compression == "gzip",
                                  token=tokens.header)

    def _run(self) -> None:
        try:
            self._go.wait(1.0)
            if self.config.start_delay_s > 0:
                # Let the shell draw its first prompt before we take the GIL for imports.
                self._exiting.wait(self.config.start_delay_s)
            while self._exiting.is_set() and self._sender is None:
                # The shell is exiting and its flush spooled everything: setting up now would
                # only slow its exit down. Another span (a later session) gets us going.
                with self._lock:
                    if self._pending:
                        break
                    self._wake.clear()
                self._wake.wait()
            self._setup()
            drained_at = 0.0
            while True:
                self._send_pending()
                now = time.monotonic()
                for _interval, make, due in self._periodic:
                    if now >= due[0]:
                        due[0] = now + _interval
                        try:
                            span = make()
                        except Exception:  # noqa: BLE001
                            span = None
                        if span is not None:
                            self.submit(span)
                with self._lock:
                    if self._pending:
                        continue
                    self._idle.set()
                if (self.breaker.allow() and now - drained_at > 5.0
                        and not self._exiting.is_set()):
                    drained_at = now
                    self.drain_spool()
                timeout = 5.0
                for _interval, _make, due in self._periodic:
                    timeout = min(timeout, max(due[0] - time.monotonic(), 0.0))
                if not self.breaker.allow():
                    timeout = min(timeout, max(self.breaker.open_until - time.monotonic(), 0.05))
                self._wake.wait(timeout)
                self._wake.clear()
        except Exception as exc:  # noqa: BLE001 - the shell must never see this
            self.last_error = repr(exc)
            self._debug(f"export thread stopped: {exc!r}")
            self._idle.set()
        finally:
            self._alive = False

    def _send_pending(self) -> None:
        with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            self._inflight = batch
            self._inflight_gen += 1
            gen = self._inflight_gen
        body = encode_request(batch, self.resource or {}, "shellspan", __version__)
        if self.breaker.allow():
            result = self._sender.send(body)
        else:
            result = SendResult(RETRYABLE, error="circuit open")
        with self._lock:
            abandoned = gen == self._abandoned_gen
            self._inflight = None
        self._last_outcome = result.outcome
        if result.outcome == OK:
            self.breaker.success()
            self.last_success = time.time()
            self.stats["sent_spans"] += len(batch)
        elif result.outcome == RETRYABLE:
            if result.error != "circuit open":
                self.breaker.failure(result.retry_after)
            self.last_error = result.error or f"HTTP {result.status}"
            if not abandoned:
                self.spool.write(body)
                self.stats["spooled_batches"] += 1
            self._debug(f"send failed ({self.last_error}); spooled")
        else:
            self.stats["rejected_batches"] += 1
            self.last_error = f"HTTP {result.status}"
            self._debug(f"batch rejected: HTTP {result.status}")

    def drain_spool(self, limit: int = 50) -> int:
        """Resend spooled requests while the endpoint accepts them; returns how many were sent."""
        if self._sender is None:
            self._setup()
        sent = 0
        for claimed, body in self.spool.claim(limit):
            if not self.breaker.allow():
                self.spool.release(claimed)
                continue
            result = self._sender.send(body)
            if result.outcome == OK:
                self.breaker.success()
                self.last_success = time.time()
                self.spool.ack(claimed)
                sent += 1
                self.stats["resent_batches"] += 1
            elif result.outcome == PERMANENT:
                self.spool.ack(claimed)  # it will never be accepted
                self.stats["rejected_batches"] += 1
            else:
                self.breaker.failure(result.retry_after)
                self.spool.release(claimed)
        return sent


_exporter: Exporter | None = None


def get_exporter(config: Config | None = None, *, subject: str = "") -> Exporter:
    """The process-wide exporter (created on first use)."""
    global _exporter
    if _exporter is None:
        _exporter = Exporter(config, subject=subject)
    return _exporter
