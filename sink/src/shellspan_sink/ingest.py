"""The receive path shared by OTLP/HTTP and OTLP/gRPC, traces and logs alike: encode, queue,
report the outcome. One `Ingest` per signal, each with its own WAL.

Every span and log record the sink takes is stamped with the time it received it
(``semconv.RECEIVED_TIME``). An item whose time lies further in the past than ``max_span_age_s``,
or further ahead than ``max_span_ahead_s``, of the sink's clock is refused as OTLP partial success
(rejected count and message; clients do not retry it): its time cannot be placed on the record,
and a stream of them would scatter inserts over arbitrary days. For a span that is its start
(and, ahead, its end too); for a log record its timestamp.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass

from shellspan import semconv

from . import logs_rowbinary, rowbinary
from .config import ENCODERS
from .outcomes import Outcome, Refused
from .owners import SessionOwners
from .signals import LOGS, TRACES, Signal
from .wal import RowBatch, WriteAheadLog

log = logging.getLogger(__name__)

# (body, stamped attributes, max attrs, max length, min time, max time, skip)
#   -> (chunks by day, written, invalid ids, outside the window, {trace id: items in the window})
Encoder = Callable[..., rowbinary.Encoded]


def select_encoder(choice: str = "auto") -> tuple[str, Encoder]:
    """("compiled" or "python", the encode function) for an `ENCODERS` choice.

    The compiled encoder (``sink-accel/``) writes the same bytes as the reference one, many times
    faster (see docs/benchmarks.md); "auto" uses it when it is installed.
    """
    if choice not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {choice!r}")
    if choice != "python":
        try:
            from shellspan_sink_accel import encode_request
        except ImportError as exc:  # the machine could not build it: the reference encoder serves
            if choice == "compiled":
                raise ValueError(f"the compiled encoder is not installed ({exc})") from exc
        else:
            return "compiled", encode_request
    return "python", rowbinary.encode_request


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int  # config.SinkConfig has the defaults
    max_span_age_s: float = 0.0  # 0: no bound
    max_span_ahead_s: float = 0.0  # 0: no bound
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    # A whole command line (the shell side cuts longer ones, with a mark) fits.
    max_attribute_length: int = semconv.COMMAND_LINE_MAX_BYTES + 1024

    def window(self, now_ns: int) -> tuple[int, int]:
        """The (earliest, latest) item time accepted at `now_ns`, in Unix nanoseconds."""
        earliest = max(0, now_ns - int(self.max_span_age_s * 1e9)) if self.max_span_age_s else 0
        latest = (min(rowbinary.U64_MAX, now_ns + int(self.max_span_ahead_s * 1e9))
                  if self.max_span_ahead_s else rowbinary.U64_MAX)
        return earliest, latest

    def describe_window(self) -> str:
        def span(seconds: float) -> str:
            for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
                if seconds >= size and seconds % size == 0:
                    return f"{seconds / size:g}{unit}"
            return f"{seconds:g}s"
        past = span(self.max_span_age_s) if self.max_span_age_s else "any time"
        ahead = span(self.max_span_ahead_s) if self.max_span_ahead_s else "any time"
        return f"from {past} before to {ahead} after the sink's clock"


@dataclass
class Accepted:
    """A request's valid spans (or log records) are in the WAL; `durable` resolves once they
    are on disk."""

    durable: Future
    spans: int
    invalid: int  # items with an invalid trace id or span id
    outside: int = 0  # items whose time is outside the accepted window
    foreign: int = 0  # items of sessions owned by another identity
    signal: Signal = TRACES
    window: str = ""  # the accepted window, described (when items were outside it)

    @property
    def rejected(self) -> int:
        return self.invalid + self.outside + self.foreign

    @property
    def message(self) -> str:
        unit = self.signal.unit
        parts = []
        if self.invalid:
            parts.append(f"{self.invalid} {unit}(s) rejected: invalid trace id or span id")
        if self.outside:
            parts.append(f"{self.outside} {unit}(s) rejected: {self.signal.time_fields} outside "
                         f"the accepted window ({self.window})")
        if self.foreign:
            parts.append(f"{self.foreign} {unit}(s) refused: their session belongs to "
                         "another identity")
        return "; ".join(parts)


class Ingest:
    """`owners` (None: no checks, auth is off) refuses items of sessions another identity owns
    (spans, and the log records of a session's recording)."""

    def __init__(self, wal: WriteAheadLog, limits: IngestLimits, encoder: str = "auto",
                 signal: Signal = TRACES, owners: SessionOwners | None = None) -> None:
        self.wal = wal
        self.limits = limits
        self.signal = signal
        self.owners = owners
        if signal is LOGS:  # the compiled encoder covers traces only
            self.encoder, self._encode = "python", logs_rowbinary.encode_request
        else:
            self.encoder, self._encode = select_encoder(encoder)
        self.received = 0
        self.rejected = 0
        self.foreign = 0  # items refused: their session belongs to another identity
        self.foreign_requests = 0
        # Whether a request holds items of sessions someone follows live (given the trace ids
        # in it): their WAL segment is then inserted at once. Set by the live API.
        self.followed: Callable[[Collection[str]], bool] = lambda _traces: False

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized export request of the signal (ExportTraceServiceRequest or
        ExportLogsServiceRequest).

        Raises Refused (bad request: undecodable; too large: too many spans or records;
        forbidden: everything belongs to sessions of another identity), wal.Overloaded, or
        StoreError when the owner of a session cannot be looked up.
        """
        now = time.time_ns()
        stamp = {semconv.RECEIVED_TIME: str(now), **(identity or {})}
        window = self.limits.window(now)
        chunks, count, invalid, outside, traces = self._run_encoder(body, stamp, window)
        total = count + invalid + outside
        if total > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{total} {self.signal.unit}s in one request; the "
                                             f"limit is {self.limits.max_spans_per_request}")
        foreign = self.owners.foreign(traces, identity) if self.owners and traces else set()
        refused = sum(traces[t] for t in foreign)
        if foreign:
            self.foreign += refused
            self.foreign_requests += 1
            log.warning("refused %d %s(s) from %s: session(s) %s belong to another identity",
                        refused, self.signal.unit, _who(identity), ", ".join(sorted(foreign)[:10]))
            if refused == count:
                raise Refused(Outcome.FORBIDDEN,
                              f"session(s) {', '.join(sorted(foreign)[:10])} belong to another "
                              f"identity: {self.signal.unit}s refused")
            chunks, count, invalid, outside, _ = self._run_encoder(body, stamp, window, foreign)
        durable = self.wal.submit(RowBatch(chunks, count), urgent=self.followed(traces.keys()))
        self.received += count
        self.rejected += invalid + outside + refused
        return Accepted(durable, count, invalid, outside, refused, self.signal,
                        self.limits.describe_window() if outside else "")

    def _run_encoder(self, body: bytes, stamp: dict[str, str], window: tuple[int, int],
                     skip: set[str] | None = None) -> rowbinary.Encoded:
        try:
            return self._encode(body, stamp, self.limits.max_attributes,
                                self.limits.max_attribute_length, *window, skip)
        except ValueError as exc:
            raise Refused(Outcome.BAD_REQUEST, str(exc)) from exc


def _who(identity: dict[str, str] | None) -> str:
    if not identity:
        return "an unverified sender"
    return f"{identity.get(semconv.ENDUSER_ID)!r} (key {identity.get(semconv.AUTH_KEY_ID) or '-'})"
