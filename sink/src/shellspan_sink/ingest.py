"""The receive path shared by OTLP/HTTP and OTLP/gRPC: encode, queue, report the outcome.

Every span the sink takes is stamped with the time it received it (``semconv.RECEIVED_TIME``).
A span whose start lies further in the past than ``max_span_age_s``, or whose start or end lies
further ahead than ``max_span_ahead_s``, of the sink's clock is refused as OTLP partial success
(rejected count and message; clients do not retry it): its time cannot be placed on the record,
and a stream of them would scatter inserts over arbitrary days.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from shellspan import semconv

from . import rowbinary
from .config import ENCODERS
from .outcomes import Outcome, Refused
from .wal import RowBatch, WriteAheadLog

# (body, stamped attributes, max attributes, max length, min time, max time)
#   -> (chunks, rows, rejected for ids, rejected for time)
Encoder = Callable[..., tuple[list[tuple[int, bytes, int]], int, int, int]]


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
    max_attribute_length: int = 16 * 1024

    def window(self, now_ns: int) -> tuple[int, int]:
        """The (earliest, latest) span time accepted at `now_ns`, in Unix nanoseconds."""
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
    """A request's valid spans are in the WAL; `durable` resolves once they are on disk."""

    durable: Future
    spans: int
    rejected_ids: int
    rejected_time: int
    window: str

    @property
    def rejected(self) -> int:
        return self.rejected_ids + self.rejected_time

    @property
    def message(self) -> str:
        reasons = []
        if self.rejected_ids:
            reasons.append(f"{self.rejected_ids} span(s) rejected: invalid trace id or span id")
        if self.rejected_time:
            reasons.append(f"{self.rejected_time} span(s) rejected: start or end time outside "
                           f"the accepted window ({self.window})")
        return "; ".join(reasons)


class Ingest:
    def __init__(self, wal: WriteAheadLog, limits: IngestLimits, encoder: str = "auto") -> None:
        self.wal = wal
        self.limits = limits
        self.encoder, self._encode = select_encoder(encoder)
        self.received_spans = 0
        self.rejected_spans = 0

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized ExportTraceServiceRequest.

        Raises Refused (bad request: undecodable; too large: too many spans) or wal.Overloaded.
        """
        now = time.time_ns()
        stamp = {semconv.RECEIVED_TIME: str(now), **(identity or {})}
        try:
            chunks, count, bad_ids, bad_time = self._encode(
                body, stamp, self.limits.max_attributes, self.limits.max_attribute_length,
                *self.limits.window(now))
        except ValueError as exc:
            raise Refused(Outcome.BAD_REQUEST, str(exc)) from exc
        total = count + bad_ids + bad_time
        if total > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{total} spans in one request; the limit "
                                             f"is {self.limits.max_spans_per_request}")
        durable = self.wal.submit(RowBatch(chunks, count))
        self.received_spans += count
        self.rejected_spans += bad_ids + bad_time
        return Accepted(durable, count, bad_ids, bad_time,
                        self.limits.describe_window() if bad_time else "")
