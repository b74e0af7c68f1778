"""How the sink answers an export it does not take: one table for OTLP/HTTP and OTLP/gRPC.

It follows OTLP's retry rules. Over HTTP a client retries 429, 502, 503 and 504 (after the
``Retry-After`` delay) and nothing else; over gRPC it retries ``UNAVAILABLE``, and
``RESOURCE_EXHAUSTED`` only when the status carries ``RetryInfo``. So a request that can never
succeed as it is (undecodable, too large, not authenticated) gets a status no client retries,
and a request the sink cannot take *now* (the WAL is full, the disk or the store refuses) gets one
every client retries.
"""

from __future__ import annotations

import asyncio
import enum
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from .auth import AuthError
from .store import StoreError
from .wal import Overloaded

RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class Answer:
    http_status: int
    grpc_code: grpc.StatusCode
    retryable: bool


@enum.unique
class Outcome(enum.Enum):
    """Every kind of refusal: what it means, and the answer each transport gives."""

    BAD_REQUEST = ("undecodable or invalid", 400, grpc.StatusCode.INVALID_ARGUMENT, False)
    UNAUTHENTICATED = ("no valid token", 401, grpc.StatusCode.UNAUTHENTICATED, False)
    FORBIDDEN = ("another identity's session", 403, grpc.StatusCode.PERMISSION_DENIED, False)
    # RESOURCE_EXHAUSTED without RetryInfo is not retried: the same request would fail again.
    # It is also what gRPC itself answers for a message over the size limit.
    TOO_LARGE = ("too large", 413, grpc.StatusCode.RESOURCE_EXHAUSTED, False)
    UNSUPPORTED_MEDIA_TYPE = ("unknown encoding", 415, grpc.StatusCode.INVALID_ARGUMENT, False)
    BODY_TIMEOUT = ("the body never came", 408, grpc.StatusCode.DEADLINE_EXCEEDED, False)
    OVERLOADED = ("the WAL or the in-flight bound is full", 503, grpc.StatusCode.UNAVAILABLE, True)
    UNAVAILABLE = ("the WAL's disk or the store fails", 503, grpc.StatusCode.UNAVAILABLE, True)

    def __init__(self, meaning: str, http_status: int, grpc_code: grpc.StatusCode,
                 retryable: bool) -> None:
        self.meaning = meaning
        self.answer = Answer(http_status, grpc_code, retryable)


class Refused(Exception):
    """A request the sink does not take, and why."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def http_headers(outcome: Outcome) -> dict[str, str]:
    if outcome.answer.retryable:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if outcome is Outcome.UNAUTHENTICATED:
        return {"WWW-Authenticate": 'Bearer realm="shellspan"'}
    return {}


def grpc_trailers(refused: Refused) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata of a gRPC refusal: the google.rpc.Status (``grpc-status-details-bin``,
    read by Go clients such as the collector) and, when retryable, its RetryInfo alone under
    ``google.rpc.retryinfo-bin`` (read by the Python SDK's exporter), with the delay HTTP sends as
    Retry-After."""
    answer = refused.outcome.answer
    status = status_pb2.Status(code=answer.grpc_code.value[0], message=refused.message)
    if not answer.retryable:
        return (("grpc-status-details-bin", status.SerializeToString()),)
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS))
    detail = any_pb2.Any()
    detail.Pack(retry)
    status.details.append(detail)
    return (("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()))


# Everything a receiver turns into a refusal; anything else is a bug in the sink (a 500).
REFUSALS = (Refused, AuthError, Overloaded, StoreError, TimeoutError, FutureTimeout,
            asyncio.TimeoutError)


def refusal(exc: BaseException) -> Refused:
    """The refusal an exception of `REFUSALS` stands for."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, AuthError):
        return Refused(Outcome.UNAUTHENTICATED, str(exc))
    if isinstance(exc, Overloaded):
        return Refused(Outcome.OVERLOADED, str(exc))
    if isinstance(exc, StoreError):
        return Refused(Outcome.UNAVAILABLE, f"store unavailable, retry later: {exc}")
    return Refused(Outcome.UNAVAILABLE, "the WAL did not confirm the write in time, retry later")
