"""Both receivers answer a refusal from the same table: the real sink refuses the same requests
over OTLP/HTTP and OTLP/gRPC with the HTTP status and gRPC code the table names."""

from __future__ import annotations

import json
from contextlib import contextmanager

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from shellspan_sink.outcomes import Outcome
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, open_body

GOOD = request_for(session_spans(SessionSpec(commands=[Command("ls")]))).SerializeToString()
LARGE = request_for(session_spans(SessionSpec(commands=[Command("x" * 1000)] * 1100))).SerializeToString()
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# The part's limited sink: optional auth (a bad token is refused), 1 MB bodies, 3 MB in flight.
CASES = {
    "undecodable": (Outcome.BAD_REQUEST, b"\xff\xff\xff garbage", {}),
    "bad token": (Outcome.UNAUTHENTICATED, GOOD, {"authorization": "Bearer not.a.token"}),
    "too large": (Outcome.TOO_LARGE, LARGE, {}),
    "overloaded": (Outcome.OVERLOADED, GOOD, {}),  # while other clients hold 3 MB in flight
}


@contextmanager
def bound_full(sink: SinkProcess, full: bool):
    """While the block runs (when `full`), three unfinished 1 MB bodies fill the in-flight bound."""
    held = [open_body(sink.http_port, 1_000_000, 1000) for _ in range(3 if full else 0)]
    try:
        if held:
            sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 3_000_000)
        yield
    finally:
        for conn in held:
            conn.close()
        if held:
            sink.wait_for(lambda: sink.get("/health")["inflight"]["held_bytes"] == 0)


@pytest.mark.parametrize("case", CASES)
def test_http_and_grpc_give_the_tables_answer(limited_sink, case):
    sink = limited_sink
    outcome, body, headers = CASES[case]
    answer = outcome.answer
    assert len(LARGE) > 1_000_000 > len(GOOD)
    with bound_full(sink, case == "overloaded"):
        http_and_grpc_answers(sink, case, body, headers, answer)


def http_and_grpc_answers(sink: SinkProcess, case: str, body: bytes, headers: dict, answer):
    reply = post(sink.otlp_http_endpoint, body, "application/json" if case == "undecodable"
                 else "application/x-protobuf", headers={k.title(): v for k, v in headers.items()})
    assert reply.status == answer.http_status, reply.body
    assert ("Retry-After" in reply.headers) is answer.retryable
    code = (json.loads(reply.body)["code"] if case == "undecodable"
            else status_pb2.Status.FromString(reply.body).code)
    assert code == answer.grpc_code.value[0]

    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(EXPORT)(body, timeout=30, metadata=list(headers.items()))
    assert err.value.code() == answer.grpc_code, err.value.details()
    trailers = dict(err.value.trailing_metadata() or ())
    assert ("google.rpc.retryinfo-bin" in trailers) is answer.retryable
    if answer.retryable:
        retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert retry.retry_delay.seconds == int(reply.headers["Retry-After"])


def test_unsupported_media_type_over_http(limited_sink):
    reply = post(limited_sink.otlp_http_endpoint, GOOD, "text/plain")
    assert reply.status == Outcome.UNSUPPORTED_MEDIA_TYPE.answer.http_status
    assert json.loads(reply.body)["code"] == Outcome.UNSUPPORTED_MEDIA_TYPE.answer.grpc_code.value[0]


def test_an_empty_request_succeeds_on_a_full_bound(limited_sink):
    with bound_full(limited_sink, True):
        assert post(limited_sink.otlp_http_endpoint, b"").status == 200
