"""The receive path shared by OTLP/HTTP and OTLP/gRPC: encode, queue, report the outcome."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from . import rowbinary
from .config import ENCODERS
from .outcomes import Outcome, Refused
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
    """A request's valid spans are in the WAL; `durable` resolves once they are on disk."""

    durable: Future
    spans: int
    rejected: int

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        return f"{self.rejected} span(s) rejected: invalid trace id or span id"


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int  # config.SinkConfig has the default
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    max_attribute_length: int = 16 * 1024


class Ingest:
    def __init__(self, wal: WriteAheadLog, limits: IngestLimits, encoder: str = "auto") -> None:
        self.wal = wal
        self.limits = limits
        self.encoder, self._encode = select_encoder(encoder)
        self.received_spans = 0
        self.rejected_spans = 0
        # Whether a request holds spans someone follows live (their WAL segment is then
        # inserted at once); set by the live API.
        self.followed: Callable[[bytes], bool] = lambda _body: False

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized ExportTraceServiceRequest.

        Raises Refused (bad request: undecodable; too large: too many spans) or wal.Overloaded.
        """
        try:
            rows, count, rejected = self._encode(body, identity, self.limits.max_attributes,
                                                 self.limits.max_attribute_length)
        except ValueError as exc:
            raise Refused(Outcome.BAD_REQUEST, str(exc)) from exc
        if count + rejected > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{count + rejected} spans in one request; the limit "
                                             f"is {self.limits.max_spans_per_request}")
        durable = self.wal.submit(RowBatch(rows, count), urgent=self.followed(body))
        self.received_spans += count
        self.rejected_spans += rejected
        return Accepted(durable, count, rejected)
