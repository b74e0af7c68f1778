"""OTLP/gRPC TraceService on grpcio's thread pool."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from .ingest import Ingest
from .otlp import RequestError
from .store import StoreError
from .writer import Overloaded

log = logging.getLogger(__name__)


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingest: Ingest, ack_timeout: float) -> None:
        self.ingest = ingest
        self.ack_timeout = ack_timeout

    def Export(self, request, context):  # noqa: N802 - the generated interface's name
        try:
            accepted = self.ingest.accept(request)
            accepted.durable.result(self.ack_timeout)
        except RequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Overloaded as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except (StoreError, futures.TimeoutError) as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")
        response = trace_service_pb2.ExportTraceServiceResponse()
        if accepted.rejected:
            response.partial_success.rejected_spans = accepted.rejected
            response.partial_success.error_message = accepted.message
        return response


def start_grpc(ingest: Ingest, address: str, *, max_message_bytes: int, ack_timeout: float,
               workers: int = 8) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes)],
        compression=None,
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(ingest, ack_timeout), server)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return server
