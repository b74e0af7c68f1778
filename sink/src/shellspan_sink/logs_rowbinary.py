"""OTLP logs request → ClickHouse RowBinary rows for ``otel_logs``.

Values are written as the contrib ClickHouse exporter writes them (lowercase hex ids, attribute
values and the body as strings in the same forms as ``rowbinary``; a record without a time gets
its observed time). Terminal recordings are the logs the sink is for, so a record must carry a
trace id (the session) and a span id (the command, or the session's root span); records without
them are rejected (OTLP partial success), as spans with invalid ids are. As for spans, rows come
grouped by the UTC day of their timestamp (``otel_logs`` is partitioned by day), and records whose
timestamp lies outside ``[min_time_ns, max_time_ns]`` are counted and left out.

This encoder is Python only: the compiled encoder (``sink-accel``) covers traces. Recording
records are few and large (chunks of terminal output), so the per-record cost matters less than
for spans; docs/benchmarks.md has the measured throughput.
"""

from __future__ import annotations

from collections.abc import Collection

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from shellspan import semconv

from .rowbinary import (
    SINK_OWNED_ATTRIBUTES,
    U64_MAX,
    Admission,
    DayWriters,
    Encoded,
    any_to_str,
    attribute_pairs,
    parse_request,
    stamped_attributes,
)

COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber",
    "ServiceName", "Body", "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl",
    "ScopeName", "ScopeVersion", "ScopeAttributes", "LogAttributes", "EventName",
)

_SERVICE_NAME = semconv.SERVICE_NAME.encode()


def encode_request(body: bytes, identity: dict[str, str] | None, max_attributes: int,
                   max_attribute_length: int, min_time_ns: int = 0, max_time_ns: int = U64_MAX,
                   skip: Collection[str] | None = None) -> Encoded:
    """(chunks by day, rows written, records rejected for invalid ids, records rejected for a
    time outside the window, {trace id: records in the window}), as ``rowbinary.encode_request``
    for spans: records of the trace ids in `skip` are counted, not written. ValueError if
    undecodable. `identity` (the sink's stamped attributes) goes into every record's
    attributes, as on spans."""
    request: ExportLogsServiceRequest = parse_request(body, ExportLogsServiceRequest)
    days = DayWriters()
    admission = Admission(min_time_ns, max_time_ns, skip)
    extra = stamped_attributes(identity, max_attribute_length)
    for resource_logs in request.resource_logs:
        resource = attribute_pairs(resource_logs.resource.attributes, max_attributes,
                                   max_attribute_length, SINK_OWNED_ATTRIBUTES)
        service = resource.get(_SERVICE_NAME, b"")
        resource_url = resource_logs.schema_url.encode()
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_url = scope_logs.schema_url.encode()
            scope_name, scope_version = scope.name.encode(), scope.version.encode()
            scope_attrs = attribute_pairs(scope.attributes, max_attributes, max_attribute_length)
            for rec in scope_logs.log_records:
                timestamp = rec.time_unix_nano or rec.observed_time_unix_nano
                trace_hex = admission.admit(rec.trace_id, rec.span_id, timestamp, timestamp)
                if trace_hex is None:
                    continue
                w = days.row(timestamp)
                w.u64(timestamp)
                w.string(trace_hex)
                w.string(rec.span_id.hex())
                w.buf.append(rec.flags & 0xFF)
                w.string(rec.severity_text)
                w.buf.append(rec.severity_number if 0 <= rec.severity_number <= 255 else 0)
                w.bytes_(service)
                w.string(any_to_str(rec.body))
                w.bytes_(resource_url)
                w.map_(resource)
                w.bytes_(scope_url)
                w.bytes_(scope_name)
                w.bytes_(scope_version)
                w.map_(scope_attrs)
                attrs = attribute_pairs(rec.attributes, max_attributes, max_attribute_length,
                                        SINK_OWNED_ATTRIBUTES)
                if extra:
                    attrs.update(extra)
                w.map_(attrs)
                w.string(rec.event_name)
    return admission.encoded(days)
