"""OTLP trace request → ClickHouse RowBinary rows for ``otel_traces`` (the reference encoder).

Rows come grouped by the UTC day their span starts on (``otel_traces`` is partitioned by day, and
an insert may touch only so many partitions). Spans with invalid ids, and spans that start before
``min_time_ns`` or start or end after ``max_time_ns``, are counted and left out.

The sink hands ClickHouse bytes it parses natively (``INSERT ... FORMAT RowBinary``), through
clickhouse-connect's ``raw_insert``, for both the embedded and the server store. This module is the
definition of that conversion; the optional compiled accelerator (``shellspan_sink_accel``) must
produce byte-identical output, which a property test checks.

Values are written as the contrib ClickHouse exporter writes them: lowercase hex ids,
``Server``/``Client``/... span kinds, ``Unset``/``Ok``/``Error`` status codes, attribute values as
strings (ints in decimal, bools as true/false, doubles like Go's ``FormatFloat(f, 'f', -1, 64)``,
bytes in base64, arrays and maps as compact JSON).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Collection
from decimal import Decimal

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from shellspan import semconv

COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes",
    "Duration", "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name",
    "Events.Attributes", "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
SINK_OWNED_ATTRIBUTES = semconv.SINK_OWNED
NS_PER_DAY = 86_400 * 10**9
U64_MAX = 2**64 - 1

_U64 = struct.Struct("<Q")
_SERVICE_NAME = semconv.SERVICE_NAME.encode()


def format_double(value: float) -> str:
    """Shortest round-trip digits in positional notation (Go's FormatFloat(f, 'f', -1, 64))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(
                ch, f"\\u{code:04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_value(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _json_string(value.string_value)
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        d = value.double_value
        return format_double(d) if math.isfinite(d) else _json_string(format_double(d))
    if kind == "bytes_value":
        return _json_string(base64.b64encode(value.bytes_value).decode())
    if kind == "array_value":
        return "[" + ",".join(_json_value(v) for v in value.array_value.values) + "]"
    if kind == "kvlist_value":
        return "{" + ",".join(f"{_json_string(kv.key)}:{_json_value(kv.value)}"
                              for kv in value.kvlist_value.values) + "}"
    return "null"


def any_to_str(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None:
        return ""
    return _json_value(value)


def _truncate(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes, cut back to a UTF-8 character boundary."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]


def attribute_pairs(kvs, max_attributes: int, max_length: int,
                    drop: tuple[str, ...] = ()) -> dict[bytes, bytes]:
    """Encoded (key, value) pairs: first position kept, last value wins, values truncated."""
    out: dict[bytes, bytes] = {}
    for index, kv in enumerate(kvs):
        if index >= max_attributes:
            break
        key = kv.key
        if key in drop:
            continue
        value = kv.value
        text = value.string_value or any_to_str(value)
        out[key.encode()] = _truncate(text.encode(), max_length)
    return out


class _Writer:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def varint(self, n: int) -> None:
        buf = self.buf
        while n >= 0x80:
            buf.append((n & 0x7F) | 0x80)
            n >>= 7
        buf.append(n)

    def bytes_(self, data: bytes) -> None:
        n = len(data)
        if n < 0x80:
            self.buf.append(n)
        else:
            self.varint(n)
        self.buf += data

    def string(self, text: str) -> None:
        self.bytes_(text.encode())

    def u64(self, n: int) -> None:
        self.buf += _U64.pack(n & 0xFFFFFFFFFFFFFFFF)

    def map_(self, pairs: dict[bytes, bytes]) -> None:
        self.varint(len(pairs))
        for key, value in pairs.items():
            self.bytes_(key)
            self.bytes_(value)


def parse_request(body: bytes, message: type = ExportTraceServiceRequest):
    """`body` parsed as an OTLP export request (`message`: its class). ValueError if it is not."""
    request = message()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"body is not a valid {message.__name__}: {exc}") from exc
    return request


Chunk = tuple[int, bytes, int]  # (UTC day: days since the epoch, RowBinary rows, row count)
# (chunks, rows written, rejected for invalid ids, rejected for time, {trace id: items in window})
Encoded = tuple[list[Chunk], int, int, int, dict[str, int]]


class DayWriters:
    """Rows grouped by the UTC day of their time, one writer per day (in order of first
    appearance): an insert may touch only so many of a day-partitioned table's partitions."""

    __slots__ = ("_by_day", "_day", "_current")

    def __init__(self) -> None:
        self._by_day: dict[int, list] = {}  # day -> [writer, rows]
        self._day = -1
        self._current: list = []

    def row(self, time_ns: int) -> _Writer:
        """The writer for one more row at `time_ns` (Unix nanoseconds)."""
        day = time_ns // NS_PER_DAY
        if day != self._day:
            self._day = day
            self._current = self._by_day.setdefault(day, [_Writer(), 0])
        self._current[1] += 1
        return self._current[0]

    def chunks(self) -> list[Chunk]:
        return [(day, bytes(writer.buf), count) for day, (writer, count) in self._by_day.items()]


class Admission:
    """Which items of a request (spans, log records) become rows: valid ids, a time within
    the window, a session not in `skip`. Counts what it turns away, and every admitted item's
    trace (written or skipped), for both encoders."""

    __slots__ = ("min_time_ns", "max_time_ns", "skip", "rows", "rejected", "rejected_time",
                 "traces")

    def __init__(self, min_time_ns: int, max_time_ns: int, skip: Collection[str] | None) -> None:
        self.min_time_ns, self.max_time_ns, self.skip = min_time_ns, max_time_ns, skip or ()
        self.rows = self.rejected = self.rejected_time = 0
        self.traces: dict[str, int] = {}

    def admit(self, trace_id: bytes, span_id: bytes, start: int, end: int) -> str | None:
        """The item's trace id (hex) when it becomes a row, else None (counted either way)."""
        if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
            self.rejected += 1
            return None
        if start < self.min_time_ns or start > self.max_time_ns or end > self.max_time_ns:
            self.rejected_time += 1
            return None
        trace_hex = trace_id.hex()
        self.traces[trace_hex] = self.traces.get(trace_hex, 0) + 1
        if trace_hex in self.skip:
            return None
        self.rows += 1
        return trace_hex

    def encoded(self, days: DayWriters) -> Encoded:
        return days.chunks(), self.rows, self.rejected, self.rejected_time, self.traces


def stamped_attributes(identity: dict[str, str] | None,
                       max_attribute_length: int) -> dict[bytes, bytes]:
    """The sink's stamped attributes (identity, received time), as every row carries them."""
    return {k.encode(): _truncate(v.encode(), max_attribute_length)
            for k, v in (identity or {}).items()}


def encode_request(body: bytes, identity: dict[str, str] | None, max_attributes: int,
                   max_attribute_length: int, min_time_ns: int = 0, max_time_ns: int = U64_MAX,
                   skip: Collection[str] | None = None) -> Encoded:
    """(chunks in the order their days first appear, rows written, spans rejected for invalid
    ids, spans rejected for a time outside the window, {trace id: spans}).

    The trace ids (lowercase hex, in order of first appearance) count every span with valid ids
    and a time in the window, written or not; spans whose trace id is in `skip` are not written.
    ValueError if the body is undecodable."""
    request = parse_request(body)
    days = DayWriters()
    admission = Admission(min_time_ns, max_time_ns, skip)
    extra = stamped_attributes(identity, max_attribute_length)
    for resource_spans in request.resource_spans:
        resource = attribute_pairs(resource_spans.resource.attributes, max_attributes,
                                   max_attribute_length, SINK_OWNED_ATTRIBUTES)
        service = resource.get(_SERVICE_NAME, b"")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name.encode()
            scope_version = scope_spans.scope.version.encode()
            for span in scope_spans.spans:
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                trace_hex = admission.admit(span.trace_id, span.span_id, start, end)
                if trace_hex is None:
                    continue
                w = days.row(start)
                w.u64(start)
                w.string(trace_hex)
                w.string(span.span_id.hex())
                w.string(span.parent_span_id.hex())
                w.string(span.trace_state)
                w.string(span.name)
                kind = span.kind
                w.string(SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else "Unspecified")
                w.bytes_(service)
                w.map_(resource)
                w.bytes_(scope_name)
                w.bytes_(scope_version)
                attrs = attribute_pairs(span.attributes, max_attributes, max_attribute_length,
                                        SINK_OWNED_ATTRIBUTES)
                if extra:
                    attrs.update(extra)
                w.map_(attrs)
                w.u64(end - start if end > start else 0)
                code = span.status.code
                w.string(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                w.string(span.status.message)
                events = span.events
                w.varint(len(events))
                for event in events:
                    w.u64(event.time_unix_nano)
                w.varint(len(events))
                for event in events:
                    w.string(event.name)
                w.varint(len(events))
                for event in events:
                    w.map_(attribute_pairs(event.attributes, max_attributes, max_attribute_length))
                links = span.links
                w.varint(len(links))
                for link in links:
                    w.string(link.trace_id.hex())
                w.varint(len(links))
                for link in links:
                    w.string(link.span_id.hex())
                w.varint(len(links))
                for link in links:
                    w.string(link.trace_state)
                w.varint(len(links))
                for link in links:
                    w.map_(attribute_pairs(link.attributes, max_attributes, max_attribute_length))
    return admission.encoded(days)
