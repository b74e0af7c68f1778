"""OTLP/gRPC TraceService and LogsService on grpcio's thread pool.

The methods are registered with a pass-through deserializer: the request bytes go straight to
the encoder, which parses them once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent import futures

import grpc

from .auth import Verifier
from .inflight import InflightBytes
from .ingest import Ingest
from .outcomes import REFUSALS, grpc_trailers, refusal

log = logging.getLogger(__name__)


def export_handler(ingest: Ingest, verifier: Verifier, inflight: InflightBytes,
                   ack_timeout: float):
    signal = ingest.signal

    def export(body: bytes, context: grpc.ServicerContext):
        metadata = dict(context.invocation_metadata())
        try:
            identity = verifier.identity(metadata.get("authorization"))
            ingest.wal.check_room()
            # gRPC has read the message before this runs (at most one per worker thread, each
            # within max_message_bytes); it still counts against the bound while it is handled.
            with inflight.hold(len(body)):
                accepted = ingest.accept(body, identity)
                accepted.durable.result(ack_timeout)
        except REFUSALS as exc:
            refused = refusal(exc)
            context.set_trailing_metadata(grpc_trailers(refused))
            context.abort(refused.outcome.answer.grpc_code, refused.message)
        return signal.response(accepted.rejected, accepted.message)

    return grpc.unary_unary_rpc_method_handler(
        export, request_deserializer=None,
        response_serializer=signal.response_type.SerializeToString)


def start_grpc(ingests: Sequence[Ingest], verifier: Verifier, inflight: InflightBytes,
               address: str, *, max_message_bytes: int, ack_timeout: float,
               workers: int = 8) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes)],
    )
    server.add_generic_rpc_handlers(tuple(grpc.method_handlers_generic_handler(
        ingest.signal.grpc_service,
        {"Export": export_handler(ingest, verifier, inflight, ack_timeout)})
        for ingest in ingests))
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return server
