"""The receive path shared by OTLP/HTTP and OTLP/gRPC: encode, queue, report the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from shellspan import semconv

from . import rowbinary
from .config import ENCODERS
from .outcomes import Outcome, Refused
from .owners import SessionOwners
from .wal import RowBatch, WriteAheadLog

log = logging.getLogger(__name__)

# (body, identity, max attrs, max length, skip) -> (rows, written, invalid, {trace id: spans})
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
    """A request's valid spans are in the WAL; `durable` resolves once they are on disk."""

    durable: Future
    spans: int
    invalid: int  # spans with an invalid trace id or span id
    foreign: int = 0  # spans of sessions owned by another identity

    @property
    def rejected(self) -> int:
        return self.invalid + self.foreign

    @property
    def message(self) -> str:
        parts = []
        if self.invalid:
            parts.append(f"{self.invalid} span(s) rejected: invalid trace id or span id")
        if self.foreign:
            parts.append(f"{self.foreign} span(s) refused: their session belongs to another "
                         "identity")
        return "; ".join(parts)


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int  # config.SinkConfig has the default
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    max_attribute_length: int = 16 * 1024


class Ingest:
    """`owners` (None: no checks, auth is off) refuses spans of sessions another identity owns."""

    def __init__(self, wal: WriteAheadLog, limits: IngestLimits, encoder: str = "auto",
                 owners: SessionOwners | None = None) -> None:
        self.wal = wal
        self.limits = limits
        self.owners = owners
        self.encoder, self._encode = select_encoder(encoder)
        self.received_spans = 0
        self.rejected_spans = 0
        self.foreign_spans = 0
        self.foreign_requests = 0

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized ExportTraceServiceRequest.

        Raises Refused (bad request: undecodable; too large: too many spans; forbidden: every
        span belongs to sessions of another identity), wal.Overloaded, or StoreError when the
        owner of a session cannot be looked up.
        """
        rows, count, invalid, traces = self._run_encoder(body, identity)
        if count + invalid > self.limits.max_spans_per_request:
            raise Refused(Outcome.TOO_LARGE, f"{count + invalid} spans in one request; the limit "
                                             f"is {self.limits.max_spans_per_request}")
        foreign = self.owners.foreign(traces, identity) if self.owners and traces else set()
        refused = sum(traces[t] for t in foreign)
        if foreign:
            self.foreign_spans += refused
            self.foreign_requests += 1
            log.warning("refused %d span(s) from %s: session(s) %s belong to another identity",
                        refused, _who(identity), ", ".join(sorted(foreign)[:10]))
            if refused == count:
                raise Refused(Outcome.FORBIDDEN,
                              f"session(s) {', '.join(sorted(foreign)[:10])} belong to another "
                              "identity: spans refused")
            rows, count, invalid, _ = self._run_encoder(body, identity, foreign)
        durable = self.wal.submit(RowBatch(rows, count))
        self.received_spans += count
        self.rejected_spans += invalid + refused
        return Accepted(durable, count, invalid, refused)

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
