"""Decoding OTLP/HTTP requests, traces and logs (binary protobuf and JSON, optionally
gzip-compressed).

Refusals name their outcome (``outcomes.Outcome``): a bad request for an undecodable body, too
large for an oversized one, an unsupported media type for an unknown content type or encoding.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib

from google.protobuf import json_format

from .outcomes import Outcome, Refused
from .signals import TRACES, Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding, refusing bodies that inflate beyond `max_bytes` (zip bombs)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise Refused(Outcome.UNSUPPORTED_MEDIA_TYPE,
                      f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise Refused(Outcome.BAD_REQUEST, f"body is not valid {encoding}: {exc}") from exc
    if len(out) > max_bytes:
        raise Refused(Outcome.TOO_LARGE, f"decompressed body exceeds {max_bytes} bytes")
    if not inflater.eof:
        raise Refused(Outcome.BAD_REQUEST, f"truncated {encoding} body")
    return out


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: object) -> None:
    """OTLP/JSON writes ids as hex, protobuf's JSON mapping expects base64: rewrite in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise Refused(Outcome.BAD_REQUEST, f"{key} is not hex: {value[:40]!r}") from exc
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def to_protobuf(body: bytes, content_type: str, signal: Signal = TRACES) -> bytes:
    """The request as protobuf bytes: binary bodies pass through (the encoder validates them),
    JSON bodies are parsed and re-serialized."""
    if content_type == PROTOBUF:
        return body
    if content_type != JSON:
        raise Refused(Outcome.UNSUPPORTED_MEDIA_TYPE,
                      f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or {JSON}")
    try:
        doc = json.loads(body) if body.strip() else {}
        if not isinstance(doc, dict):
            raise Refused(Outcome.BAD_REQUEST, "JSON body must be an object")
        _hex_ids_to_base64(doc)
    except RecursionError:
        raise Refused(Outcome.BAD_REQUEST, "JSON body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(Outcome.BAD_REQUEST, f"body is not valid JSON: {exc}") from exc
    request = signal.request_type()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, TypeError, ValueError, RecursionError) as exc:
        raise Refused(Outcome.BAD_REQUEST, f"JSON body is not a valid "
                                           f"{signal.request_type.__name__}: {exc}") from exc
    return request.SerializeToString()


def encode_response(content_type: str, rejected: int = 0, message: str = "",
                    signal: Signal = TRACES) -> bytes:
    """The signal's export response in the request's encoding (partial success when rejected)."""
    if content_type == JSON:
        body: dict = {}
        if rejected or message:
            body["partialSuccess"] = {signal.rejected_json: str(rejected), "errorMessage": message}
        return json.dumps(body).encode()
    return signal.response(rejected, message).SerializeToString()


def encode_status(content_type: str, code: int, message: str) -> bytes:
    """A google.rpc.Status body, as OTLP/HTTP asks for on failures."""
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    from google.rpc import status_pb2  # part of googleapis-common-protos, a grpc dependency

    return status_pb2.Status(code=code, message=message).SerializeToString()
