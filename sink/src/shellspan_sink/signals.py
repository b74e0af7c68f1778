"""The two OTLP signals the sink takes, traces and logs, and what differs between them.

Both go the same way (``ingest``): the same authentication, limits, outcomes and write-ahead log
guarantees. Each has its own message types, its own WAL directory and its own raw table: spans
into ``otel_traces``, log records (terminal recordings) into ``otel_logs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from . import logs_rowbinary, rowbinary, tables


@dataclass(frozen=True)
class Signal:
    name: str
    path: str  # OTLP/HTTP
    grpc_service: str
    unit: str  # what one item is called in messages
    time_fields: str  # which of an item's times the accepted window bounds, for messages
    request_type: Any
    response_type: Any
    rejected_field: str  # of the response's partial_success
    table: str
    columns: tuple[str, ...]

    @property
    def rejected_json(self) -> str:
        """The partial_success field's OTLP/JSON (lowerCamelCase) name."""
        head, *rest = self.rejected_field.split("_")
        return head + "".join(word.title() for word in rest)

    def response(self, rejected: int = 0, message: str = ""):
        reply = self.response_type()
        if rejected or message:
            setattr(reply.partial_success, self.rejected_field, rejected)
            reply.partial_success.error_message = message
        return reply


TRACES = Signal("traces", "/v1/traces", "opentelemetry.proto.collector.trace.v1.TraceService",
                "span", "start or end time", ExportTraceServiceRequest,
                ExportTraceServiceResponse, "rejected_spans", tables.OTEL_TRACES, rowbinary.COLUMNS)
LOGS = Signal("logs", "/v1/logs", "opentelemetry.proto.collector.logs.v1.LogsService",
              "log record", "time", ExportLogsServiceRequest, ExportLogsServiceResponse,
              "rejected_log_records", tables.OTEL_LOGS, logs_rowbinary.COLUMNS)
