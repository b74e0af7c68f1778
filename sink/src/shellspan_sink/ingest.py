"""The receive path shared by OTLP/HTTP and OTLP/gRPC: convert, queue, report the outcome."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .columns import Limits, to_columns
from .otlp import RequestError
from .writer import BatchWriter


@dataclass
class Accepted:
    """A request's valid spans are queued; `durable` resolves once they are stored."""

    durable: Future
    spans: int
    rejected: int
    message: str


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int = 16 * 1024 * 1024
    max_spans_per_request: int = 100_000
    columns: Limits = Limits()


class Ingest:
    def __init__(self, writer: BatchWriter, limits: IngestLimits = IngestLimits()) -> None:
        self.writer = writer
        self.limits = limits
        self.received_spans = 0
        self.rejected_spans = 0

    def accept(self, request: ExportTraceServiceRequest,
               identity: dict[str, str] | None = None) -> Accepted:
        """Raises RequestError for a request over the limits, writer.Overloaded when full."""
        count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        if count > self.limits.max_spans_per_request:
            raise RequestError(
                413, f"{count} spans in one request; the limit is {self.limits.max_spans_per_request}"
            )
        batch = to_columns(request, identity, self.limits.columns)
        durable = self.writer.submit(batch)
        self.received_spans += batch.size
        self.rejected_spans += batch.rejected
        return Accepted(durable, batch.size, batch.rejected, "; ".join(batch.errors))
