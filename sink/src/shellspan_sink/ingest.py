"""The receive path shared by OTLP/HTTP and OTLP/gRPC, traces and logs alike: encode, queue,
report the outcome. One `Ingest` per signal, each with its own WAL."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from . import logs_rowbinary, rowbinary
from .config import ENCODERS
from .outcomes import Outcome, Refused
from .signals import LOGS, TRACES, Signal
from .wal import RowBatch, WriteAheadLog

Encoder = Callable[..., tuple[bytes, int, int]]  # (body, identity, max attrs, max length)


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
    rejected: int
    unit: str = TRACES.unit

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        return f"{self.rejected} {self.unit}(s) rejected: invalid trace id or span id"


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int  # config.SinkConfig has the default
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    max_attribute_length: int = 16 * 1024


class Ingest:
    def __init__(self, wal: WriteAheadLog, limits: IngestLimits, encoder: str = "auto",
                 signal: Signal = TRACES) -> None:
        self.wal = wal
        self.limits = limits
        self.signal = signal
        if signal is LOGS:  # the compiled encoder covers traces only
            self.encoder, self._encode = "python", logs_rowbinary.encode_request
        else:
            self.encoder, self._encode = select_encoder(encoder)
        self.received = 0
        self.rejected = 0

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized export request of the signal (ExportTraceServiceRequest or
        ExportLogsServiceRequest).

        Raises Refused (bad request: undecodable; too large: too many spans or records) or
        wal.Overloaded.
        """
        try:
            rows, count, rejected = self._encode(body, identity, self.limits.max_attributes,
                                                 self.limits.max_attribute_length)
        except ValueError as exc:
            raise Refused(Outcome.BAD_REQUEST, str(exc)) from exc
        if count + rejected > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{count + rejected} {self.signal.unit}s in one "
                                             f"request; the limit is "
                                             f"{self.limits.max_spans_per_request}")
        durable = self.wal.submit(RowBatch(rows, count))
        self.received += count
        self.rejected += rejected
        return Accepted(durable, count, rejected, self.signal.unit)
