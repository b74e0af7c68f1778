"""The receive path shared by OTLP/HTTP and OTLP/gRPC, traces and logs alike: encode, queue,
report the outcome. One `Ingest` per signal, each with its own WAL."""

from __future__ import annotations

import logging
from collections.abc import Callable
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

# (body, identity, max attrs, max length, skip) -> (rows, written, invalid, {trace id: items})
Encoder = Callable[..., tuple[bytes, int, int, dict[str, int]]]


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


@dataclass
class Accepted:
    """A request's valid spans (or log records) are in the WAL; `durable` resolves once they
    are on disk."""

    durable: Future
    spans: int
    invalid: int  # items with an invalid trace id or span id
    foreign: int = 0  # items of sessions owned by another identity
    unit: str = TRACES.unit

    @property
    def rejected(self) -> int:
        return self.invalid + self.foreign

    @property
    def message(self) -> str:
        parts = []
        if self.invalid:
            parts.append(f"{self.invalid} {self.unit}(s) rejected: invalid trace id or span id")
        if self.foreign:
            parts.append(f"{self.foreign} {self.unit}(s) refused: their session belongs to "
                         "another identity")
        return "; ".join(parts)


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int  # config.SinkConfig has the default
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    # A whole command line (the shell side cuts longer ones, with a mark) fits.
    max_attribute_length: int = semconv.COMMAND_LINE_MAX_BYTES + 1024


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

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized export request of the signal (ExportTraceServiceRequest or
        ExportLogsServiceRequest).

        Raises Refused (bad request: undecodable; too large: too many spans or records;
        forbidden: everything belongs to sessions of another identity), wal.Overloaded, or
        StoreError when the owner of a session cannot be looked up.
        """
        rows, count, invalid, traces = self._run_encoder(body, identity)
        if count + invalid > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{count + invalid} {self.signal.unit}s in one "
                                             f"request; the limit is "
                                             f"{self.limits.max_spans_per_request}")
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
            rows, count, invalid, _ = self._run_encoder(body, identity, foreign)
        durable = self.wal.submit(RowBatch(rows, count))
        self.received += count
        self.rejected += invalid + refused
        return Accepted(durable, count, invalid, refused, self.signal.unit)

    def _run_encoder(self, body: bytes, identity: dict[str, str] | None,
                     skip: set[str] | None = None) -> tuple[bytes, int, int, dict[str, int]]:
        try:
            return self._encode(body, identity, self.limits.max_attributes,
                                self.limits.max_attribute_length, skip)
        except ValueError as exc:
            raise Refused(Outcome.BAD_REQUEST, str(exc)) from exc


def _who(identity: dict[str, str] | None) -> str:
    if not identity:
        return "an unverified sender"
    return f"{identity.get(semconv.ENDUSER_ID)!r} (key {identity.get(semconv.AUTH_KEY_ID) or '-'})"
