"""Both receivers answer a refusal from the same table: the real sink refuses the same requests
over OTLP/HTTP and OTLP/gRPC with the HTTP status and gRPC code the table names."""

from __future__ import annotations

import json

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from shellspan_sink.outcomes import Outcome
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess

SECRET = "outcomes-secret-0123456789abcdef0123"
GOOD = request_for(session_spans(SessionSpec(commands=[Command("ls")]))).SerializeToString()
LARGE = request_for(session_spans(SessionSpec(commands=[Command("x" * 100)] * 300))).SerializeToString()
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    """Optional auth (a bad token is refused), a 20 kB body limit, and a WAL bound of one byte:
    every request that would be stored is refused as overloaded."""
    proc = SinkProcess(tmp_path_factory.mktemp("outcomes"),
                       extra_args=["--max-body-bytes", "20000", "--max-wal-bytes", "1"],
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    yield proc.start()
    proc.stop()


CASES = {
    "undecodable": (Outcome.BAD_REQUEST, b"\xff\xff\xff garbage", {}),
    "bad token": (Outcome.UNAUTHENTICATED, GOOD, {"authorization": "Bearer not.a.token"}),
    "too large": (Outcome.TOO_LARGE, LARGE, {}),
    "WAL full": (Outcome.OVERLOADED, GOOD, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_http_and_grpc_give_the_tables_answer(sink, case):
    outcome, body, headers = CASES[case]
    answer = outcome.answer
    assert len(LARGE) > 20000 > len(GOOD)

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


def test_unsupported_media_type_over_http(sink):
    reply = post(sink.otlp_http_endpoint, GOOD, "text/plain")
    assert reply.status == Outcome.UNSUPPORTED_MEDIA_TYPE.answer.http_status
    assert json.loads(reply.body)["code"] == Outcome.UNSUPPORTED_MEDIA_TYPE.answer.grpc_code.value[0]


def test_an_empty_request_still_succeeds_on_a_full_wal(sink):
    assert post(sink.otlp_http_endpoint, b"").status == 200
