"""Tokens for tests of a sink with auth on: an HS256 secret both sides know, tokens signed with it
(or any key), and sending a session with a token."""

from __future__ import annotations

import time

import jwt

from shellspan_testing.otlp_builders import Reply, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def token(sub: str = "alice", key=SECRET, alg: str = "HS256", **claims) -> str:
    now = int(time.time())
    payload = {"sub": sub, "aud": "shellspan", "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, key, algorithm=alg, headers=claims.pop("headers", None))


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def send(sink: SinkProcess, spec: SessionSpec, headers: dict[str, str] | None = None,
         spans=None) -> Reply:
    body = request_for(spans or session_spans(spec)).SerializeToString()
    return post(sink.otlp_http_endpoint, body, headers=headers)
