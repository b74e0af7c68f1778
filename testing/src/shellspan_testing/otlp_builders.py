"""Build OTLP trace requests shaped like shellspan sessions, with exact ids and timestamps."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from shellspan import semconv


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


@dataclass
class Command:
    line: str
    exit_code: int = 0
    duration_s: float = 0.01
    cwd: str = "/home/user"


@dataclass
class SessionSpec:
    user: str = "alice"
    host: str = "web-1"
    shell_type: str = "bash"
    component: str = ""
    start_ns: int = field(default_factory=time.time_ns)
    duration_s: float = 60.0
    commands: list[Command] = field(default_factory=list)
    ended: bool = True
    exit_reason: str = "exit"
    trace_id: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def session_id(self) -> str:
        return self.trace_id.hex()


def session_spans(spec: SessionSpec) -> list[Span]:
    """Start span, one span per command, and (if ended) the root span."""
    root_id = os.urandom(8)
    meta = [kv(semconv.SESSION_ID, spec.session_id), kv(semconv.SHELL_TYPE, spec.shell_type),
            kv(semconv.USER_NAME, spec.user), kv(semconv.HOST_NAME, spec.host),
            kv(semconv.PROCESS_PID, 4242)]
    if spec.component:
        meta.append(kv(semconv.COMPONENT_NAME, spec.component))
    spans = [Span(trace_id=spec.trace_id, span_id=os.urandom(8), parent_span_id=root_id,
                  name=semconv.SPAN_SESSION_START, kind=Span.SPAN_KIND_INTERNAL,
                  start_time_unix_nano=spec.start_ns, end_time_unix_nano=spec.start_ns + 1000,
                  attributes=meta)]
    t = spec.start_ns + 1_000_000
    for seq, cmd in enumerate(spec.commands, 1):
        end = t + int(cmd.duration_s * 1e9)
        spans.append(Span(
            trace_id=spec.trace_id, span_id=os.urandom(8), parent_span_id=root_id,
            name=semconv.SPAN_COMMAND, start_time_unix_nano=t, end_time_unix_nano=end,
            attributes=[kv(semconv.SESSION_ID, spec.session_id),
                        kv(semconv.COMMAND_LINE, cmd.line),
                        kv(semconv.COMMAND_NAME, cmd.line.split()[0] if cmd.line.split() else ""),
                        kv(semconv.COMMAND_SEQ, seq), kv(semconv.CWD, cmd.cwd),
                        kv(semconv.EXIT_CODE, cmd.exit_code)],
            status=Status(code=Status.STATUS_CODE_ERROR if cmd.exit_code else Status.STATUS_CODE_UNSET),
        ))
        t = end + 1_000_000
    if spec.ended:
        spans.append(Span(
            trace_id=spec.trace_id, span_id=root_id, name=semconv.SPAN_SESSION,
            start_time_unix_nano=spec.start_ns,
            end_time_unix_nano=spec.start_ns + int(spec.duration_s * 1e9),
            attributes=meta + [kv(semconv.EXIT_REASON, spec.exit_reason), kv(semconv.EXIT_CODE, 0)],
        ))
    return spans


def request_for(spans: list[Span], service: str = "shellspan-test") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "shellspan.tests"
    ss.spans.extend(spans)
    return req


def to_otlp_json(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: protobuf JSON mapping, but ids as hex (the OTLP spec's rule)."""
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(req)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(doc).encode()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def export_response(self) -> ExportTraceServiceResponse:
        return ExportTraceServiceResponse.FromString(self.body)


def post(url: str, body: bytes, content_type: str = "application/x-protobuf",
         encoding: str | None = None, headers: dict[str, str] | None = None,
         path: str = "/v1/traces") -> Reply:
    if encoding == "gzip":
        body = gzip.compress(body)
    hdrs = {"Content-Type": content_type, **(headers or {})}
    if encoding:
        hdrs["Content-Encoding"] = encoding
    request = urllib.request.Request(f"{url}{path}", data=body, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Reply(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), dict(exc.headers))
