"""The outcome table both receivers answer from follows OTLP's retry rules."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from shellspan_sink.outcomes import (
    RETRY_AFTER_SECONDS,
    Outcome,
    Refused,
    grpc_trailers,
    http_headers,
)

# OTLP/HTTP: clients retry these and nothing else. OTLP/gRPC: UNAVAILABLE is retried,
# RESOURCE_EXHAUSTED only with RetryInfo (which the sink never sends with it).
HTTP_RETRYABLE = {429, 502, 503, 504}


@pytest.mark.parametrize("outcome", list(Outcome))
def test_each_outcome_is_retryable_on_both_transports_or_on_neither(outcome):
    answer = outcome.answer
    assert (answer.http_status in HTTP_RETRYABLE) is answer.retryable
    assert (answer.grpc_code is grpc.StatusCode.UNAVAILABLE) is answer.retryable
    headers = http_headers(outcome)
    assert ("Retry-After" in headers) is answer.retryable
    trailers = dict(grpc_trailers(Refused(outcome, "why")))
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert (status.code, status.message) == (answer.grpc_code.value[0], "why")
    assert ("google.rpc.retryinfo-bin" in trailers) is answer.retryable
    if answer.retryable:
        delay = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert delay.retry_delay.seconds == RETRY_AFTER_SECONDS == int(headers["Retry-After"])
        assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_a_too_large_request_is_refused_alike_on_both_transports():
    answer = Outcome.TOO_LARGE.answer
    assert (answer.http_status, answer.grpc_code) == (413, grpc.StatusCode.RESOURCE_EXHAUSTED)
