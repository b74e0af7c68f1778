"""Off-thread OTLP/HTTP export: batching, periodic spans, a bounded exit flush, the spool.

One ``Exporter`` carries one OTLP signal (``TRACES``: the session's spans; ``LOGS``: the log
records of terminal recordings): the signal says where requests go, how items are encoded and
which spool directory holds them; everything else (batching, the breaker, the spool, the exit
hand-off) is the same code for both. The shell's thread only appends finished items to a list
(``Exporter.submit``); a daemon thread
encodes and sends them (``shellspan.transport``: short timeouts, no retry loop of its own). A
batch that cannot be sent — endpoint down, black-holed, overloaded — goes to the on-disk spool
(``shellspan.spool``). While the spool holds anything and the endpoint does not answer, the
thread probes it about once a second, and drains the spool as soon as it answers; an endpoint
that answers and refuses is backed off instead (``transport.CircuitBreaker``). The spool is also
drained every few seconds while the endpoint works, so entries left by other processes go too.
``Exporter.flush(budget)`` waits at most ``budget`` seconds and then spools whatever is left, so
a shell's exit never waits longer than that on the network (``shellspan.handoff`` may then send
the spooled rest from a detached process). ``Exporter.status()`` is a snapshot for displays.

The module imports only ``os``, ``sys``, ``threading`` (and ``_thread``), ``time`` and the small
transport module at load; everything else is imported on the export thread.
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
from shellspan.otlp import AttrValue, LogData, SpanData, encode_logs_request, encode_request
from shellspan.spool import Spool
from shellspan.transport import CircuitBreaker, HttpSender, Outcome, SendResult

DRAIN_INTERVAL_S = 5.0  # while the endpoint works: look for entries other processes spooled
PROBE_TIMEOUT_S = 1.0  # an endpoint that takes longer to answer an empty request is down
DRAIN_BATCH = 50  # entries per drain round (pending spans are sent between rounds)


class Signal:
    """What differs between the OTLP signals an ``Exporter`` carries."""

    __slots__ = ("name", "encode", "spool_subdir", "weigh")

    def __init__(self, name: str, encode: Callable[..., bytes], spool_subdir: str,
                 weigh: Callable[[Item], int] | None = None) -> None:
        self.name = name  # "traces" or "logs": selects the endpoint (``Config.signal``)
        self.encode = encode  # (items, resource, scope name, scope version) -> request body
        self.spool_subdir = spool_subdir  # inside the spool directory ("": the directory)
        # About how many bytes an item encodes to; None: batches are not cut by size.
        self.weigh = weigh

    def spool_dir(self, config: Config) -> str:
        return os.path.join(config.spool_dir, self.spool_subdir) if self.spool_subdir \
            else config.spool_dir


Item = SpanData | LogData
Produced = Item | list | None  # what a periodic function gives the exporter
TRACES = Signal("traces", encode_request, "")
LOGS = Signal("logs", encode_logs_request, "logs", lambda r: len(r.body) + 160)
SIGNALS = {s.name: s for s in (TRACES, LOGS)}
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # a logs request is cut below this (sinks refuse 16 MiB)


def split_batch(items: list[Item], signal: Signal,
                limit: int = MAX_REQUEST_BYTES) -> tuple[list[Item], list[Item]]:
    """(the items of the next request, the rest): at least one item, at most about ``limit``
    bytes for a signal whose items are weighed."""
    if signal.weigh is None:
        return items, []
    total = 0
    for i, item in enumerate(items):
        total += signal.weigh(item)
        if total > limit and i:
            return items[:i], items[i:]
    return items, []


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


class ExportStatus:
    """A snapshot of an exporter for status displays (``shellspan status``, the agent's state
    file): what waits in the spool, how the last sends went, and the breaker's state."""

    __slots__ = ("spooled_entries", "spooled_bytes", "last_success", "last_error", "breaker",
                 "stats")

    def __init__(self, spooled_entries: int, spooled_bytes: int, last_success: float,
                 last_error: str, breaker: str, stats: dict[str, int]) -> None:
        self.spooled_entries, self.spooled_bytes = spooled_entries, spooled_bytes
        self.last_success = last_success  # time.time() of the last accepted send; 0: none yet
        self.last_error = last_error  # why the last failed send failed ("" if none did)
        self.breaker = breaker  # "closed", "probing" (no answer) or "backing off" (refused)
        self.stats = stats

    @property
    def breaker_open(self) -> bool:
        return self.breaker != CircuitBreaker.CLOSED


class Exporter:
    """Export pipeline of one signal: pending items → background sender → spool on failure."""

    def __init__(self, config: Config | None = None, signal: Signal = TRACES) -> None:
        self.config = config or Config()
        self.signal = signal
        self.spool = Spool(signal.spool_dir(self.config), max_bytes=self.config.spool_max_bytes,
                           max_files=self.config.spool_max_files)
        self.resource: dict[str, AttrValue] | None = None  # built on the export thread
        self.breaker = CircuitBreaker()
        self.stats = {"sent_spans": 0, "spooled_batches": 0, "resent_batches": 0,
                      "rejected_batches": 0, "failed_sends": 0, "probes": 0}
        self.last_error = ""
        self.last_success = 0.0  # time.time() of the last batch the endpoint accepted
        self._lock = threading.Lock()
        self._pending: list[Item] = []
        # Items submit_durable wrote to the spool: sent with the next batch, then removed.
        self._durable: list[tuple[str, Item]] = []
        self._inflight: list[Item] | None = None
        self._inflight_durable: list[str] = []  # spool entries of the durable spans in flight
        self._inflight_gen = 0
        self._abandoned_gen = -1
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._go = threading.Event()  # the shell is ready (first prompt) or is exiting
        self._exiting = threading.Event()
        self._last_outcome: Outcome | None = None
        self._drain_at = 0.0  # time.monotonic() of the next spool drain
        self._periodic: list[tuple[float, Callable[[], Produced], list[float]]] = []
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

    def submit(self, span: Item) -> None:
        """Queue a finished span (a log record, for ``LOGS``); never blocks on the network."""
        self.submit_many([span])

    def submit_many(self, items: list[Item]) -> None:
        """Queue several items at once (one lock, one wake-up)."""
        if not items:
            return
        with self._lock:
            self._pending.extend(items)
            self._idle.clear()
        self._wake.set()
        if self._started and not self._spawned:
            self._spawn()

    def submit_durable(self, span: Item) -> None:
        """Queue a span that must outlive the process even if it is killed the next moment:
        it is written to the spool at once, on the caller's thread (a fraction of a
        millisecond); the export thread sends it with the next batch and then removes the
        entry; if the process dies first, whichever process drains the spool next sends it.
        Without a usable spool it is simply submitted."""
        if self.resource is None:
            self.resource = default_resource(self.config)
        path = self.spool.write(self._encode([span]), bounded=False)
        if path is None:
            self.submit(span)
            return
        with self._lock:
            self._durable.append((path, span))
            self._idle.clear()
        self._wake.set()
        if self._started and not self._spawned:
            self._spawn()

    def add_periodic(self, interval_s: float, make: Callable[[], Produced], *,
                     first_in: float | None = None) -> None:
        """Call ``make`` every ``interval_s`` (the first time after ``first_in``, by default
        after ``interval_s``) on the export thread and export what it returns: an item, a
        list of items, or None."""
        first = interval_s if first_in is None else first_in
        self._periodic.append((interval_s, make, [time.monotonic() + first]))
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
            spooled = list(self._inflight_durable)  # the thread may still send those
            durable, self._durable = self._durable, []
            self._idle.set()
        if not wait:  # only now, so that the thread finds nothing to set itself up for
            self._signal_exit()
        if left:
            # One entry with the durable spans not sent yet, which then replaces theirs: one
            # file for the exit helper instead of several.
            if self.resource is None:
                self.resource = default_resource(self.config)
            rest = [span for _path, span in durable] + left
            paths = []
            while rest:
                part, rest = split_batch(rest, self.signal)
                paths.append(self.spool.write(self._encode(part)))
            self.stats["spooled_batches"] += len(paths)
            spooled += [path for path in paths if path]
            if all(paths):
                for entry, _span in durable:
                    self.spool.ack(entry)
                durable = []
        spooled += [path for path, _span in durable]
        if spooled and self.config.exit_handoff and not self.breaker.failures:
            deadline = {Outcome.OK: 15.0,  # the endpoint works, it is only slow
                        None: 5.0}.get(self._last_outcome)  # never tried: a few attempts
            if deadline is not None:
                from shellspan.handoff import spawn_sender

                spawn_sender(spooled, deadline, self.signal.name)
        return not left and not spooled

    @property
    def set_up(self) -> bool:
        """The export thread has done its imports (the sender, the redaction patterns)."""
        return self._sender is not None

    def status(self) -> ExportStatus:
        """What waits in the spool and how sending goes (reads the spool directory)."""
        n, size = self.spool.size()
        return ExportStatus(n, size, self.last_success, self.last_error, self.breaker.state,
                            dict(self.stats))

    def _encode(self, items: list[Item]) -> bytes:
        return self.signal.encode(items, self.resource or {}, "shellspan", __version__)

    def _signal_exit(self) -> None:
        self._exiting.set()
        self._go.set()
        self._wake.set()

    # --- export thread -----------------------------------------------------------------------

    def _debug(self, msg: str) -> None:
        if self.config.debug:
            sys.stderr.write(f"[shellspan] {msg}\n")

    def _setup(self) -> None:
        from shellspan.redact import default_redactor
        from shellspan.transport import sender_for

        if not self._exiting.is_set():
            default_redactor()  # compile the patterns here rather than at the first command
        if self.resource is None:
            self.resource = default_resource(self.config)
        self._sender = sender_for(self.config, self.signal.name)

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
                    if self._pending or self._durable:
                        break
                    self._wake.clear()
                self._wake.wait()
            self._setup()
            while True:
                self._send_pending()
                self._run_periodic()
                with self._lock:
                    if self._pending or self._durable:
                        continue
                    self._idle.set()
                if not self._exiting.is_set():
                    self._deliver_spooled()
                self._wake.wait(self._sleep_s())
                self._wake.clear()
        except Exception as exc:  # noqa: BLE001 - the shell must never see this
            self.last_error = repr(exc)
            self._debug(f"export thread stopped: {exc!r}")
            self._idle.set()
        finally:
            self._alive = False

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for interval, make, due in self._periodic:
            if now >= due[0]:
                due[0] = now + interval
                try:
                    made = make()
                except Exception:  # noqa: BLE001
                    made = None
                if isinstance(made, list):
                    self.submit_many(made)
                elif made is not None:
                    self.submit(made)

    def _sleep_s(self) -> float:
        """How long the thread may wait for the next span: until the next periodic span, probe,
        allowed send after a back-off, or spool drain, whichever comes first."""
        now = time.monotonic()
        timeout = DRAIN_INTERVAL_S
        for _interval, _make, due in self._periodic:
            timeout = min(timeout, due[0] - now)
        wait = self.breaker.wait_s()
        if wait:  # a probe, or the end of a back-off, is due then
            timeout = min(timeout, wait)
        elif wait is None and not self._exiting.is_set():  # closed: the next drain
            timeout = min(timeout, self._drain_at - now)
        # (A back-off that is over waits for the next span or drain: nothing to hurry for.)
        return max(timeout, 0.05)

    def _deliver_spooled(self) -> None:
        """Probe a silent endpoint while anything is spooled; drain the spool when it works."""
        if self.breaker.probe_due():
            if self.spool.has_entries():
                self.stats["probes"] += 1
                self._record(self._sender.probe(PROBE_TIMEOUT_S))
            else:
                self.breaker.defer_probe()
        backing_off = self.breaker.state == CircuitBreaker.BACKING_OFF
        if self.breaker.allow() and (backing_off or time.monotonic() >= self._drain_at):
            sent = self.drain_spool(DRAIN_BATCH)
            # A full round: more may be waiting, go on after the pending spans; else rest.
            self._drain_at = time.monotonic() + (0.0 if sent == DRAIN_BATCH
                                                 else DRAIN_INTERVAL_S)

    def _record(self, result: SendResult) -> None:
        """Account for a send: the breaker, the status fields, and a drain right away when the
        endpoint has just come back."""
        if self.breaker.record(result):
            self._drain_at = 0.0
            self._debug("endpoint answers again; draining the spool")
        if result.outcome is Outcome.OK:
            self.last_success = time.time()
        elif result.outcome is Outcome.RETRYABLE:
            self.stats["failed_sends"] += 1
            self.last_error = result.describe()

    def _send_pending(self) -> None:
        with self._lock:
            if not self._pending and not self._durable:
                return
            batch, self._pending = split_batch(self._pending, self.signal)
            durable, self._durable = self._durable, []
            self._inflight = batch
            self._inflight_durable = [path for path, _span in durable]
            self._inflight_gen += 1
            gen = self._inflight_gen
        # Durable spans go in the same request (one round trip, as if they had been pending);
        # their spool entries are removed once it is answered, and stay if it fails.
        spans = [span for _path, span in durable] + batch
        body = self._encode(spans)
        tried = self.breaker.allow()
        result = self._sender.send(body) if tried else SendResult(Outcome.RETRYABLE,
                                                                  error="circuit open")
        with self._lock:
            abandoned = gen == self._abandoned_gen
            self._inflight, self._inflight_durable = None, []
        if tried:
            self._record(result)
            self._last_outcome = result.outcome
        if result.outcome is not Outcome.RETRYABLE:
            for path, _span in durable:
                self.spool.ack(path)
        if result.outcome is Outcome.OK:
            self.stats["sent_spans"] += len(spans)
        elif result.outcome is Outcome.RETRYABLE:
            if batch and not abandoned:  # the durable spans are in the spool already
                self.spool.write(body if not durable else self._encode(batch))
                self.stats["spooled_batches"] += 1
            self._debug(f"send failed ({result.describe()}); spooled")
        else:
            self.stats["rejected_batches"] += 1
            self.last_error = result.describe()
            self._debug(f"batch rejected: {result.describe()}")

    def drain_spool(self, limit: int = DRAIN_BATCH) -> int:
        """Resend up to ``limit`` spooled requests while the endpoint accepts them; returns how
        many were sent. Stops at the first failure (the entry goes back to the spool)."""
        if self._sender is None:
            self._setup()
        sent = 0
        for claimed, body in self.spool.claim(limit):
            if not self._resend(claimed, body):
                break
            sent += 1
        return sent

    def _resend(self, claimed: str, body: bytes) -> bool:
        """Send one claimed spool entry; True when it is done with (accepted, or refused for
        good), False when it went back to the spool (the endpoint fails or the breaker is
        open)."""
        if not self.breaker.allow():
            self.spool.release(claimed)
            return False
        result = self._sender.send(body)
        self._record(result)
        if result.outcome is Outcome.RETRYABLE:
            self.spool.release(claimed)
            return False
        self.spool.ack(claimed)
        if result.outcome is Outcome.OK:
            self.stats["resent_batches"] += 1
        else:  # it will never be accepted
            self.stats["rejected_batches"] += 1
            self.last_error = result.describe()
        return True


_exporter: Exporter | None = None


def get_exporter(config: Config | None = None) -> Exporter:
    """The process-wide exporter (created on first use)."""
    global _exporter
    if _exporter is None:
        _exporter = Exporter(config)
    return _exporter


def flush(budget_s: float | None = None) -> bool:
    """Flush the process-wide exporter within ``budget_s`` (spooling the rest)."""
    return _exporter.flush(budget_s) if _exporter is not None else True
