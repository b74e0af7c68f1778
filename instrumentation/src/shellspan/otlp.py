"""A minimal OTLP/protobuf encoder for trace and logs export requests (stdlib only).

The shell side encodes its few span shapes itself instead of importing the OpenTelemetry SDK and
protobuf runtime (about 200 ms of imports): encoding must be cheap enough to run on the shell's
own thread at exit, when whatever could not be sent is written to the spool. The output is a
standard ``opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`` (spans, with their
events and links) or ``opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`` (the log
records of terminal recordings).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

AttrValue = str | bool | int | float | list | tuple

KIND_INTERNAL = 1
KIND_SERVER = 2
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2


def new_trace_id() -> bytes:
    """16 random bytes, never all zero."""
    while True:
        tid = os.urandom(16)
        if any(tid):
            return tid


def new_span_id() -> bytes:
    """8 random bytes, never all zero."""
    while True:
        sid = os.urandom(8)
        if any(sid):
            return sid


class Link:
    """A span link (to the trace that started this session, for instance)."""

    __slots__ = ("trace_id", "span_id", "trace_state")

    def __init__(self, trace_id: bytes, span_id: bytes, trace_state: str = "") -> None:
        self.trace_id, self.span_id, self.trace_state = trace_id, span_id, trace_state


class Event:
    """A span event: something that happened at one moment of a span (a shell snapshot)."""

    __slots__ = ("time_ns", "name", "attributes")

    def __init__(self, time_ns: int, name: str,
                 attributes: dict[str, AttrValue] | None = None) -> None:
        self.time_ns, self.name = time_ns, name
        self.attributes: dict[str, AttrValue] = attributes if attributes is not None else {}


class SpanData:
    """One finished span, in the shape OTLP needs (plain class: no dataclasses import cost)."""

    __slots__ = ("trace_id", "span_id", "name", "start_ns", "end_ns", "parent_span_id",
                 "attributes", "kind", "status_code", "status_message", "links", "events")

    def __init__(self, trace_id: bytes, span_id: bytes, name: str, start_ns: int, end_ns: int,
                 parent_span_id: bytes = b"", attributes: dict[str, AttrValue] | None = None,
                 kind: int = KIND_INTERNAL, status_code: int = STATUS_UNSET,
                 status_message: str = "", links: list[Link] | None = None,
                 events: list[Event] | None = None) -> None:
        self.trace_id, self.span_id, self.name = trace_id, span_id, name
        self.start_ns, self.end_ns, self.parent_span_id = start_ns, end_ns, parent_span_id
        self.attributes: dict[str, AttrValue] = attributes if attributes is not None else {}
        self.kind, self.status_code, self.status_message = kind, status_code, status_message
        self.links: list[Link] = links if links is not None else []
        self.events: list[Event] = events if events is not None else []


class LogData:
    """One log record in a session's trace context (a chunk of a terminal recording)."""

    __slots__ = ("trace_id", "span_id", "time_ns", "observed_ns", "body", "attributes")

    def __init__(self, trace_id: bytes, span_id: bytes, time_ns: int, observed_ns: int,
                 body: str, attributes: dict[str, AttrValue] | None = None) -> None:
        self.trace_id, self.span_id = trace_id, span_id
        self.time_ns, self.observed_ns, self.body = time_ns, observed_ns, body
        self.attributes: dict[str, AttrValue] = attributes if attributes is not None else {}


# --- protobuf wire format -------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field_no: int, wire: int) -> bytes:
    return _varint((field_no << 3) | wire)


def _len(field_no: int, payload: bytes) -> bytes:
    return _key(field_no, 2) + _varint(len(payload)) + payload


def _str(field_no: int, s: str) -> bytes:
    return _len(field_no, s.encode("utf-8", "replace")) if s else b""


def _any_value(v: AttrValue) -> bytes:
    if isinstance(v, bool):
        return _key(2, 0) + _varint(1 if v else 0)
    if isinstance(v, int):
        return _key(3, 0) + _varint(v)
    if isinstance(v, float):
        import struct  # rare: not worth its import on the start-up path

        return _key(4, 1) + struct.pack("<d", v)
    if isinstance(v, (list, tuple)):
        arr = b"".join(_len(1, _any_value(x)) for x in v)
        return _len(5, arr)
    return _len(1, str(v).encode("utf-8", "replace"))


def _kv(key: str, v: AttrValue) -> bytes:
    return _len(1, key.encode()) + _len(2, _any_value(v))


def _attrs(field_no: int, attrs: dict[str, AttrValue]) -> bytes:
    return b"".join(_len(field_no, _kv(k, v)) for k, v in attrs.items() if v is not None)


def encode_span(s: SpanData) -> bytes:
    out = [
        _len(1, s.trace_id),
        _len(2, s.span_id),
        _len(4, s.parent_span_id) if s.parent_span_id else b"",
        _str(5, s.name),
        _key(6, 0) + _varint(s.kind),
        _key(7, 1) + s.start_ns.to_bytes(8, "little"),
        _key(8, 1) + s.end_ns.to_bytes(8, "little"),
        _attrs(9, s.attributes),
    ]
    for event in s.events:
        body = (_key(1, 1) + event.time_ns.to_bytes(8, "little") + _str(2, event.name)
                + _attrs(3, event.attributes))
        out.append(_len(11, body))
    for link in s.links:
        body = _len(1, link.trace_id) + _len(2, link.span_id) + _str(3, link.trace_state)
        out.append(_len(13, body))
    if s.status_code or s.status_message:
        status = _str(2, s.status_message)
        if s.status_code:
            status += _key(3, 0) + _varint(s.status_code)
        out.append(_len(15, status))
    return b"".join(out)


def _export_request(items: Iterable[bytes], resource: dict[str, AttrValue], scope_name: str,
                    scope_version: str) -> bytes:
    """One resource with one scope holding the encoded items: the layout (and field numbers)
    ExportTraceServiceRequest and ExportLogsServiceRequest share."""
    scope = _str(1, scope_name) + _str(2, scope_version)
    scoped = _len(1, scope) + b"".join(_len(2, item) for item in items)
    return _len(1, _len(1, _attrs(1, resource)) + _len(2, scoped))


def encode_request(spans: list[SpanData], resource: dict[str, AttrValue],
                   scope_name: str = "shellspan", scope_version: str = "") -> bytes:
    """Encode spans as one ExportTraceServiceRequest (one resource, one scope)."""
    return _export_request(map(encode_span, spans), resource, scope_name, scope_version)


def encode_log(r: LogData) -> bytes:
    return b"".join((
        _key(1, 1) + r.time_ns.to_bytes(8, "little"),
        _len(5, _any_value(r.body)),
        _attrs(6, r.attributes),
        _len(9, r.trace_id),
        _len(10, r.span_id),
        _key(11, 1) + r.observed_ns.to_bytes(8, "little"),
    ))


def encode_logs_request(records: list[LogData], resource: dict[str, AttrValue],
                        scope_name: str = "shellspan", scope_version: str = "") -> bytes:
    """Encode log records as one ExportLogsServiceRequest (one resource, one scope)."""
    return _export_request(map(encode_log, records), resource, scope_name, scope_version)


def traceparent(trace_id: bytes, span_id: bytes, sampled: bool = True) -> str:
    """The W3C ``traceparent`` header value for a span."""
    return f"00-{trace_id.hex()}-{span_id.hex()}-{'01' if sampled else '00'}"


def parse_traceparent(value: str) -> tuple[bytes, bytes] | None:
    """(trace id, span id) from a W3C ``traceparent`` value, or None if it is not valid."""
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or parts[0] == "ff":
        return None
    try:
        tid, sid = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    if not any(tid) or not any(sid):
        return None
    return tid, sid
