"""The receive path shared by OTLP/HTTP and OTLP/gRPC: encode, queue, report the outcome."""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import dataclass

from shellspan import semconv

from . import rowbinary
from .otlp import RequestError
from .wal import RowBatch, WriteAheadLog

_accelerated = None
if os.environ.get("SHELLSPAN_ENCODER", "auto") != "python":
    try:  # the optional compiled encoder: byte-identical output, about ten times faster
        from shellspan_sink_accel import encode_request as _accelerated
    except ImportError:  # the machine could not build it: the reference encoder serves
        pass

ENCODER = "compiled" if _accelerated else "python"
encode_request = _accelerated or rowbinary.encode_request


@dataclass
class Accepted:
    """A request's valid spans are spooled; `durable` resolves once they are on disk."""

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
    max_body_bytes: int = 16 * 1024 * 1024
    max_spans_per_request: int = 100_000
    max_attributes: int = 128
    # A whole command line (the shell side cuts longer ones, with a mark) fits.
    max_attribute_length: int = semconv.COMMAND_LINE_MAX_BYTES + 1024


class Ingest:
    def __init__(self, spool: WriteAheadLog, limits: IngestLimits = IngestLimits()) -> None:
        self.spool = spool
        self.limits = limits
        self.received_spans = 0
        self.rejected_spans = 0

    def accept(self, body: bytes, identity: dict[str, str] | None = None) -> Accepted:
        """Take a serialized ExportTraceServiceRequest.

        Raises RequestError (400 undecodable, 413 too many spans) or wal.Overloaded.
        """
        try:
            rows, count, rejected = encode_request(body, identity, self.limits.max_attributes,
                                                   self.limits.max_attribute_length)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from exc
        if count + rejected > self.limits.max_spans_per_request:
            raise RequestError(413, f"{count + rejected} spans in one request; the limit is "
                                    f"{self.limits.max_spans_per_request}")
        durable = self.spool.submit(RowBatch(rows, count))
        self.received_spans += count
        self.rejected_spans += rejected
        return Accepted(durable, count, rejected)
