"""Input limits against the real sink: span and log record times outside the accepted window are
refused as partial success, request bytes in flight are bounded across connections, transports
and signals (refused before the body is read), bodies that never finish time out, memory returns after a burst of
held-open large bodies, and hostile JSON gets a 400."""

from __future__ import annotations

import gzip
import json
import select
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from shellspan import semconv
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.recordings import (
    RecordedCommand,
    logs_request,
    post_logs,
    record,
    recorded_session,
    to_otlp_json,
)
from shellspan_testing.sinkproc import SinkProcess, open_body, read_head, running

MIB = 1 << 20
HOUR = 3600 * 10**9


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def memory_sink(tmp_path_factory):
    """A sink of its own with the defaults (64 MiB in flight, 16 MiB bodies): its memory is
    measured."""
    with running(SinkProcess(tmp_path_factory.mktemp("memory"))) as (sink,):
        yield sink


def test_bytes_in_flight_are_bounded_across_connections_and_transports(limited_sink):
    sink = limited_sink  # 3 MB in flight, 1 MB bodies within 2 s
    # Spans and recordings (log records) share the bound.
    held = [open_body(sink.http_port, 1_000_000, 500_000, path)
            for path in ("/v1/traces", "/v1/logs", "/v1/traces")]
    try:
        sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 3_000_000)
        # Refused on its headers alone: the body is never read.
        for path in ("/v1/traces", "/v1/logs"):
            late = open_body(sink.http_port, 1000, 0, path)
            reply = read_head(late)
            late.close()
            assert reply.startswith(b"HTTP/1.1 503"), (path, reply)
            assert b"Retry-After: 2" in reply
        rec = recorded_session([RecordedCommand("echo late", b"late\r\n")], user="grpc-late")
        with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
            for export, request in (
                    (trace_service_pb2_grpc.TraceServiceStub(channel).Export,
                     request_for(rec.spans)),
                    (logs_service_pb2_grpc.LogsServiceStub(channel).Export,
                     logs_request(rec.records))):
                with pytest.raises(grpc.RpcError) as err:
                    export(request, timeout=10)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "in flight" in err.value.details()
                trailers = dict(err.value.trailing_metadata())
                retry = error_details_pb2.RetryInfo.FromString(
                    trailers["google.rpc.retryinfo-bin"])
                assert retry.retry_delay.seconds == 2

        # The held bodies never finish: after --body-timeout they get 408 and free the bound.
        for conn in held:
            assert read_head(conn).startswith(b"HTTP/1.1 408")
        sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 0)
    finally:
        for conn in held:
            conn.close()
    spec = SessionSpec(user="after-the-hold", commands=[Command("ls")])
    assert post(sink.otlp_http_endpoint, request_for(session_spans(spec)).SerializeToString()).status == 200
    sink.wait_for(lambda: sink.sessions(user="after-the-hold"))
    assert sink.get("/health")["inflight"]["refused_requests"] >= 4


@pytest.mark.slow
def test_memory_returns_after_held_open_large_bodies(memory_sink):
    """Ten clients announce 15 MiB bodies and hold them open after 14 MiB: four fit the
    64 MiB bound and are read, six are refused on their headers. Memory grows by about what
    the bound admits, not by what the clients sent, and is given back once they hang up."""
    sink = memory_sink
    pid = sink.proc.pid
    baseline = rss_mib(pid)
    conns = [open_body(sink.http_port, 15 * MIB, 0) for _ in range(10)]
    try:
        sink.wait_for(lambda: sink.get("/health")["inflight"]["refused_requests"] == 6)
        refused = sum(1 for c in conns
                      if select.select([c], [], [], 0)[0] and b" 503 " in c.recv(200))
        assert refused == 6
        chunk = b"\0" * MIB
        for conn in conns:
            conn.setblocking(False)
        sent = [0] * len(conns)
        deadline = time.monotonic() + 60
        while min(sent) < 14 * MIB and time.monotonic() < deadline:
            for i, conn in enumerate(conns):
                if sent[i] < 14 * MIB:
                    try:
                        sent[i] += conn.send(chunk)
                    except (BlockingIOError, OSError):
                        pass
        assert min(sent) >= 14 * MIB, "the sink stopped taking the bodies"
        sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 4 * 15 * MIB)
        holding = rss_mib(pid)
        assert holding - baseline < 2 * 64, (baseline, holding)  # not 10 x 14 MiB
    finally:
        for conn in conns:
            conn.close()
    sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 0)
    sink.wait_for(lambda: rss_mib(pid) < baseline + 16, timeout=30)
    spec = SessionSpec(user="after-the-burst", commands=[Command("ls")])
    assert post(sink.otlp_http_endpoint, request_for(session_spans(spec)).SerializeToString()).status == 200
    sink.wait_for(lambda: sink.sessions(user="after-the-burst"))


def test_spans_outside_the_window_are_refused_as_partial_success(limited_sink):
    sink = limited_sink  # 2 days back, 1 hour ahead
    now = time.time_ns()
    spec = SessionSpec(user="window", commands=[Command(c) for c in (
        "today", "yesterday", "in 1970", "3 days ago", "2 hours ahead", "ends 2 hours ahead")])
    spans = session_spans(spec)
    times = {"today": (now - HOUR, now), "yesterday": (now - 24 * HOUR, now - 24 * HOUR + 1),
             "in 1970": (0, 1), "3 days ago": (now - 72 * HOUR, now - 72 * HOUR + 1),
             "2 hours ahead": (now + 2 * HOUR, now + 2 * HOUR + 1),
             "ends 2 hours ahead": (now - HOUR, now + 2 * HOUR)}
    for span in spans:
        if span.name == semconv.SPAN_COMMAND:
            line = next(a.value.string_value for a in span.attributes
                        if a.key == semconv.COMMAND_LINE)
            span.start_time_unix_nano, span.end_time_unix_nano = times[line]
    reply = post(sink.otlp_http_endpoint, request_for(spans).SerializeToString())
    assert reply.status == 200
    partial = reply.export_response().partial_success
    assert partial.rejected_spans == 4
    assert "4 span(s) rejected: start or end time outside the accepted window" in partial.error_message
    assert "from 2d before to 1h after the sink's clock" in partial.error_message
    session = sink.wait_for(lambda: [s for s in sink.sessions(user="window")
                                     if s["command_count"] == 2])[0]
    assert [c["command"] for c in sink.session(session["session_id"])["commands"]] == [
        "today", "yesterday"]

    # gRPC answers the same partial success.
    grpc_spec = SessionSpec(user="window-grpc", commands=[Command("old")])
    old = session_spans(grpc_spec)
    old[1].start_time_unix_nano, old[1].end_time_unix_nano = 1, 2
    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        answer = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request_for(old), timeout=30)
    assert answer.partial_success.rejected_spans == 1
    assert "outside the accepted window" in answer.partial_success.error_message
    assert sink.get("/health")["status"] == "ok"


def test_log_records_outside_the_window_are_refused_as_partial_success(limited_sink):
    """Recordings answer to the same window as spans, by their timestamp (or, without one, the
    time the recorder observed them)."""
    sink = limited_sink  # 2 days back, 1 hour ahead
    now = time.time_ns()
    rec = recorded_session([RecordedCommand("echo in time", b"in time\r\n")], user="logs-window",
                           start_ns=now - HOUR)
    session, root = rec.spec.trace_id, rec.root_span_id
    times = {"yesterday": now - 24 * HOUR, "in 1970": 0, "3 days ago": now - 72 * HOUR,
             "2 hours ahead": now + 2 * HOUR, "observed only": None}
    for seq, (body, at) in enumerate(times.items(), start=len(rec.records) + 1):
        late = record(seq, session, root, at or 0, "o", body)
        late.observed_time_unix_nano = now if at is None else 0
        rec.records.append(late)
    assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString()).status == 200
    reply = post_logs(sink.otlp_http_endpoint, logs_request(rec.records).SerializeToString())
    assert reply.status == 200
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(reply.body).partial_success
    assert partial.rejected_log_records == 3
    assert ("3 log record(s) rejected: time outside the accepted window (from 2d before to 1h "
            "after the sink's clock)") in partial.error_message
    output = {r.body.string_value for r in rec.records if any(
        a.key == semconv.RECORDING_EVENT and a.value.string_value == "o" for a in r.attributes)}
    kept = output - {"in 1970", "3 days ago", "2 hours ahead"}
    assert {"yesterday", "observed only", "in time\r\n"} <= kept

    def shown() -> set[str]:
        status, _, body = sink.fetch(f"/api/sessions/{rec.session_id}/recording")
        if status != 200:
            return set()
        return {json.loads(line)[2] for line in body.decode().splitlines()[1:]
                if json.loads(line)[1] == "o"}
    sink.wait_for(lambda: shown() == kept)

    # gRPC and OTLP/JSON answer the same partial success.
    old = record(1, session, root, 1, "o", "1970 over gRPC")
    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        answer = logs_service_pb2_grpc.LogsServiceStub(channel).Export(logs_request([old]),
                                                                       timeout=30)
    assert answer.partial_success.rejected_log_records == 1
    assert "time outside the accepted window" in answer.partial_success.error_message
    reply = post_logs(sink.otlp_http_endpoint, to_otlp_json(logs_request([old])),
                      content_type="application/json")
    assert json.loads(reply.body)["partialSuccess"]["rejectedLogRecords"] == "1"
    assert sink.get("/health")["status"] == "ok"


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"resourceSpans":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":'
    + b'{"arrayValue":{"values":[' * 900 + b"]}}" * 900 + b"}]}]}]}]}",
], ids=["arrays", "arrays in resourceSpans", "objects", "AnyValue arrays"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_deeply_nested_json_is_a_clear_400(limited_sink, body, gzipped):
    sink = limited_sink
    if gzipped:
        body = gzip.compress(body)
    reply = post(sink.otlp_http_endpoint, body, "application/json",
                 headers={"Content-Encoding": "gzip"} if gzipped else None)
    assert reply.status == 400, reply.body[:300]
    message = json.loads(reply.body)["message"]
    assert "nested too deeply" in message or "not a valid ExportTraceServiceRequest" in message
    assert sink.get("/health")["status"] == "ok"
