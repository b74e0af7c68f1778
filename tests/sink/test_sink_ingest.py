"""OTLP in: the real sink process on real chDB, fed by the real OpenTelemetry SDK and raw requests."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.error

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shellspan import semconv
from shellspan_testing.otlp_builders import (
    Command,
    SessionSpec,
    kv,
    post,
    request_for,
    session_spans,
    to_otlp_json,
)
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess

SDK_SCRIPT = r"""
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
protocol, endpoint = sys.argv[1], sys.argv[2]
if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
provider = TracerProvider(resource=Resource.create({"service.name": "sdk-test", "host.name": "sdk-host"}))
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("test")
meta = {"shell.type": "python", "user.name": "sdk-" + protocol}
root = tracer.start_span("shell.session", attributes=meta)
ctx = trace.set_span_in_context(root)
with tracer.start_as_current_span("shell.session.start", context=ctx, attributes=meta):
    pass
for seq, line in enumerate(["print(1)", "1/0"], 1):
    with tracer.start_as_current_span("shell.command", context=ctx, attributes={
            "process.command_line": line, "shell.command.seq": seq,
            "process.exit.code": int(line == "1/0")}) as span:
        if line == "1/0":
            span.set_status(trace.Status(trace.StatusCode.ERROR))
root.set_attribute("shell.exit.reason", "eof")
root.end()
provider.shutdown()
print(format(root.get_span_context().trace_id, "032x"))
"""


def wait_session(sink: SinkProcess, session_id: str, **expect) -> dict:
    """The session once it is stored with the expected fields (404 until then)."""
    def check():
        try:
            found = sink.get(f"/api/sessions/{session_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        if all(found["session"].get(k) == v for k, v in expect.items()):
            return found
        return None
    return sink.wait_for(check, timeout=20)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sdk_exporter_session_reaches_api_and_cli(shared_sink, protocol):
    endpoint = shared_sink.otlp_http_endpoint if protocol == "http" else shared_sink.otlp_grpc_endpoint
    out = subprocess.run([sys.executable, "-c", SDK_SCRIPT, protocol, endpoint],
                         capture_output=True, text=True, timeout=60, check=True)
    session_id = out.stdout.strip().splitlines()[-1]

    found = wait_session(shared_sink, session_id, command_count=2)
    s = found["session"]
    assert (s["state"], s["shell_type"], s["user_name"], s["host_name"]) == (
        "ended", "python", f"sdk-{protocol}", "sdk-host")
    assert (s["failed_count"], s["exit_reason"]) == (1, "eof")
    assert [c["command"] for c in found["commands"]] == ["print(1)", "1/0"]
    assert [c["exit_code"] for c in found["commands"]] == [0, 1]
    assert found["commands"][1]["status"] == "Error"

    listed = [x["session_id"] for x in shared_sink.sessions(user=f"sdk-{protocol}")]
    assert listed == [session_id]
    cli = subprocess.run([str(SINK_BIN), "sessions", "list", "--api", shared_sink.api_url,
                          "--user", f"sdk-{protocol}", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert [x["session_id"] for x in json.loads(cli.stdout)] == [session_id]


@pytest.mark.parametrize("encoding", [None, "gzip"])
@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_raw_encodings_are_accepted(shared_sink, content_type, encoding):
    spec = SessionSpec(user=f"enc-{content_type[-4:]}-{encoding}", commands=[Command("ls"), Command("pwd")])
    req = request_for(session_spans(spec))
    body = req.SerializeToString() if content_type.endswith("protobuf") else to_otlp_json(req)
    reply = post(shared_sink.otlp_http_endpoint, body, content_type, encoding)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith(content_type)
    if content_type.endswith("protobuf"):
        assert not reply.export_response().HasField("partial_success")
    else:
        assert json.loads(reply.body) == {}
    found = wait_session(shared_sink, spec.session_id)
    assert [c["command"] for c in found["commands"]] == ["ls", "pwd"]
    assert found["session"]["user_name"] == spec.user


def test_empty_request_succeeds(shared_sink):
    for ctype, body in (("application/x-protobuf", b""), ("application/json", b"{}")):
        reply = post(shared_sink.otlp_http_endpoint, body, ctype)
        assert reply.status == 200
        if ctype.endswith("protobuf"):
            reply.export_response()  # parses: a collector treats an unparsable 200 as failure


@pytest.mark.parametrize("body,ctype,status,fragment", [
    (b"\xff\xff\xff\xff garbage", "application/x-protobuf", 400, "not a valid ExportTraceServiceRequest"),
    (b'{"resourceSpans": [', "application/json", 400, "not valid JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json",
     400, "not hex"),
    (b'{"resourceSpans": "nope"}', "application/json", 400, "not a valid ExportTraceServiceRequest"),
    (b"[1, 2]", "application/json", 400, "must be an object"),
    (b"hello", "text/plain", 415, "unsupported Content-Type"),
])
def test_malformed_requests_get_clear_errors(shared_sink, body, ctype, status, fragment):
    reply = post(shared_sink.otlp_http_endpoint, body, ctype)
    assert reply.status == status
    if ctype == "application/x-protobuf":
        message = status_pb2.Status.FromString(reply.body).message
    else:
        message = json.loads(reply.body)["message"]
    assert fragment in message
    assert shared_sink.get("/health")["status"] == "ok"


def test_bad_gzip_and_unknown_encoding(shared_sink):
    body = request_for(session_spans(SessionSpec())).SerializeToString()
    assert post(shared_sink.otlp_http_endpoint, body, encoding="br").status == 415
    reply = post(shared_sink.otlp_http_endpoint, b"not gzip at all",
                 headers={"Content-Encoding": "gzip"})
    assert reply.status == 400


def test_oversized_bodies_are_refused(limited_sink):
    small = limited_sink  # 1 MB bodies
    spec = SessionSpec(commands=[Command("x" * 1000) for _ in range(1100)])
    body = request_for(session_spans(spec)).SerializeToString()
    assert len(body) > 1_000_000
    reply = post(small.otlp_http_endpoint, body)
    assert reply.status == 413
    assert "exceeds" in status_pb2.Status.FromString(reply.body).message
    # A small gzip body that inflates past the limit (a zip bomb) is refused too.
    bomb = gzip.compress(b"\x00" * 10_000_000)
    assert len(bomb) < 1_000_000
    assert post(small.otlp_http_endpoint, bomb, headers={"Content-Encoding": "gzip"}).status == 413
    # The sink keeps serving, and a request within the limit still lands.
    ok = SessionSpec(commands=[Command("ls")])
    assert post(small.otlp_http_endpoint, request_for(session_spans(ok)).SerializeToString()).status == 200
    wait_session(small, ok.session_id, command_count=1)


def test_invalid_ids_give_partial_success(shared_sink):
    spec = SessionSpec(user="partial", commands=[Command("ls")])
    spans = session_spans(spec)
    bad = type(spans[0])()
    bad.CopyFrom(spans[1])
    bad.span_id = b"\x00" * 8
    reply = post(shared_sink.otlp_http_endpoint, request_for(spans + [bad]).SerializeToString())
    assert reply.status == 200
    partial = reply.export_response().partial_success
    assert partial.rejected_spans == 1
    assert "invalid trace id or span id" in partial.error_message
    assert wait_session(shared_sink, spec.session_id)["session"]["command_count"] == 1


def test_duplicate_delivery_is_counted_once(shared_sink):
    spec = SessionSpec(user="dup", commands=[Command("ls"), Command("false", exit_code=1)])
    body = request_for(session_spans(spec)).SerializeToString()
    for _ in range(3):
        assert post(shared_sink.otlp_http_endpoint, body).status == 200
    with grpc.insecure_channel(f"127.0.0.1:{shared_sink.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            ExportTraceServiceRequest.FromString(body), timeout=30)
    found = wait_session(shared_sink, spec.session_id)
    assert (found["session"]["command_count"], found["session"]["failed_count"]) == (2, 1)
    assert [c["command"] for c in found["commands"]] == ["ls", "false"]
    listed = [s for s in shared_sink.sessions(user="dup")]
    assert len(listed) == 1
    raw = shared_sink.get("/health")  # the raw table holds copies; queries must not show them
    assert raw["received_spans"] >= 4 * len(session_spans(spec))
    stats = shared_sink.get("/api/stats", user="dup")
    assert stats["totals"]["commands"] == 2
    assert {c["command_name"]: c["runs"] for c in stats["top_commands"]} == {"ls": 1, "false": 1}


def test_client_cannot_claim_a_verified_identity(shared_sink):
    spec = SessionSpec(user="mallory")
    spans = session_spans(spec)
    for span in spans:
        span.attributes.extend([kv(semconv.ENDUSER_ID, "root"), kv(semconv.AUTH_VERIFIED, True)])
    assert post(shared_sink.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    s = wait_session(shared_sink, spec.session_id)["session"]
    assert (s["enduser_id"], s["verified"]) == ("", False)
    assert semconv.ENDUSER_ID not in s["attributes"]


def test_session_without_root_is_active_then_abandoned_then_ended(shared_sink):
    sink = shared_sink  # sessions without a root turn abandoned after 3 s
    spec = SessionSpec(user="live", commands=[Command("top", duration_s=0.1)], ended=False)
    spans = session_spans(spec)
    assert post(sink.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    s = wait_session(sink, spec.session_id)["session"]
    assert s["state"] == "active" and s["end_time"] is None
    assert [x["session_id"] for x in sink.sessions(state="active", user="live")] == [spec.session_id]
    wait_session(sink, spec.session_id, state="abandoned")
    assert [x["session_id"] for x in sink.sessions(state="abandoned", user="live")] == [
        spec.session_id]
    assert sink.sessions(state="active", user="live") == []
    # The root span arrives late (a spooled session, say): the session is ended after all.
    ended = SessionSpec(user="live", trace_id=spec.trace_id, start_ns=spec.start_ns, duration_s=5,
                        ended=True)
    root = session_spans(ended)[-1]
    assert post(sink.otlp_http_endpoint, request_for([root]).SerializeToString()).status == 200
    s = wait_session(sink, spec.session_id, state="ended")["session"]
    assert s["duration_s"] == 5.0 and s["command_count"] == 1


def test_grpc_rejects_garbage_and_reports_partial_success(shared_sink):
    with grpc.insecure_channel(f"127.0.0.1:{shared_sink.grpc_port}") as channel:
        raw = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\xff\xff\xff garbage", timeout=10)
        assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
        spec = SessionSpec(user="grpc-partial", commands=[Command("ls")])
        spans = session_spans(spec)
        spans[1].trace_id = b"short"
        reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request_for(spans), timeout=30)
        assert reply.partial_success.rejected_spans == 1
    s = wait_session(shared_sink, spec.session_id)["session"]
    assert s["command_count"] == 0 and s["state"] == "ended"
