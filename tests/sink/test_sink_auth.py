"""Identity: the sink verifies JWTs (HS256, RS256/ES256 PEM keys, a JWKS file) for OTLP in and for
reading, stamps the verified subject on every span, and refuses what does not verify."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from shellspan import semconv
from shellspan_testing.auth_helpers import SECRET, bearer, send, token
from shellspan_testing.otlp_builders import (
    Command,
    SessionSpec,
    kv,
    request_for,
    session_spans,
)
from shellspan_testing.sinkproc import SinkProcess, running


def _pem(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


class Keys:
    """An RSA and an EC key pair given to the sink as PEM files, and an RSA key in a JWKS file."""

    def __init__(self, directory) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.jwks = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (directory / "rsa.pem").write_bytes(_pem(self.rsa))
        (directory / "ec.pem").write_bytes(_pem(self.ec))
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.jwks.public_key()))
        (directory / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
        self.env = {"SHELLSPAN_AUTH_PUBLIC_KEYS": f"{directory / 'rsa.pem'},{directory / 'ec.pem'}",
                    "SHELLSPAN_AUTH_JWKS": str(directory / "jwks.json"),
                    "SHELLSPAN_AUTH_MODE": "required"}


@pytest.fixture(scope="module")
def sinks(tmp_path_factory):
    """The module's three sinks, started together: HS256 required, HS256 optional, and PEM/JWKS
    keys required."""
    root = tmp_path_factory.mktemp("auth")
    keys = Keys(root)
    required = SinkProcess(root / "required", env={"SHELLSPAN_AUTH_SECRET": SECRET,
                                                   "SHELLSPAN_AUTH_MODE": "required"})
    required.read_token = token("reader", scope="sessions:read")
    optional = SinkProcess(root / "optional", env={"SHELLSPAN_AUTH_SECRET": SECRET,
                                                   "SHELLSPAN_AUTH_MODE": "optional"})
    optional.read_token = token("reader", scope="sessions:read")
    with_keys = SinkProcess(root / "keys", env=keys.env)
    with_keys.read_token = token("reader", key=keys.rsa, alg="RS256", scope="sessions:read")
    with_keys.keys = keys
    with running(required, optional, with_keys) as sinks:
        yield sinks


@pytest.fixture(scope="module")
def sink(sinks):
    return sinks[0]


def test_verified_subject_wins_over_claimed_user(sink):
    spec = SessionSpec(user="root")  # the client claims to be root
    spans = session_spans(spec)
    for span in spans:
        span.attributes.append(kv(semconv.ENDUSER_ID, "root"))
    assert send(sink, spec, bearer(token("alice")), spans).status == 200
    s = sink.wait_for(lambda: sink.sessions(user="root"))[0]
    assert (s["enduser_id"], s["verified"]) == ("alice", True)
    assert sink.session(s["session_id"])["session"]["attributes"][semconv.ENDUSER_ID] == "alice"


def _none_token() -> str:
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'root', 'aud': 'shellspan', 'exp': now + 300})}."


@pytest.mark.parametrize("name,header", [
    ("missing", None),
    ("expired", bearer(token(exp=int(time.time()) - 3600))),
    ("wrong signature", bearer(token(key="another-secret-another-secret-123"))),
    ("wrong audience", bearer(token(aud="someone-else"))),
    ("alg none", bearer(_none_token())),
    ("not yet valid", bearer(token(nbf=int(time.time()) + 3600))),
    ("no subject", {"Authorization": "Bearer " + jwt.encode(
        {"aud": "shellspan", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")}),
    ("empty subject", bearer(token(""))),
    ("garbage", {"Authorization": "Bearer not.a.token"}),
    ("not bearer", {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"}),
])
def test_bad_tokens_are_rejected_with_401(sink, name, header):
    spec = SessionSpec(user=f"rejected-{name}")
    received = sink.get("/health")["received_spans"]
    reply = send(sink, spec, header)
    assert reply.status == 401, name
    assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer")
    # The sink counts spans when it takes them into its WAL, before it answers: none were taken.
    assert sink.get("/health")["received_spans"] == received
    assert sink.sessions(user=f"rejected-{name}") == []


def test_grpc_checks_the_token_too(sink):
    spec = SessionSpec(user="grpc-auth", commands=[Command("ls")])
    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(request_for(session_spans(spec)), timeout=10,
                        metadata=[("authorization", f"Bearer {token(key='wrong-secret-wrong-secret-12345678')}")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(request_for(session_spans(spec)), timeout=30,
                    metadata=[("authorization", f"Bearer {token('bob')}")])
    s = sink.wait_for(lambda: sink.sessions(user="grpc-auth"))[0]
    assert (s["enduser_id"], s["verified"], s["command_count"]) == ("bob", True, 1)


def test_read_access_needs_the_scope(sink):
    def status(tok: str | None, path: str = "/api/sessions") -> int:
        request = urllib.request.Request(sink.api_url + path)
        if tok:
            request.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status(None) == 401
    assert status(token("writer")) == 401  # a shell's token cannot read others' sessions
    assert status(token("reader", scope="sessions:read other")) == 200
    assert status(token("reader", scope=["sessions:read"]), "/api/stats") == 200
    assert status(None, "/health") == 200
    assert status(None, "/") == 200  # the page loads; its data calls carry the token


def test_sdk_exporter_with_headers_is_accepted_and_without_is_refused(sink):
    script = r"""
import sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
exporter = OTLPSpanExporter(endpoint=sys.argv[1] + "/v1/traces",
                            headers={"Authorization": "Bearer " + sys.argv[2]} if sys.argv[2] else None)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
span = provider.get_tracer("t").start_span("shell.session.start",
                                            attributes={"user.name": sys.argv[3]})
span.end()
provider.shutdown()
"""
    run = [sys.executable, "-c", script, sink.otlp_http_endpoint]
    subprocess.run(run + [token("carol"), "sdk-ok"], check=True, timeout=60, capture_output=True)
    out = subprocess.run(run + ["", "sdk-refused"], timeout=60, capture_output=True, text=True)
    assert "401" in out.stderr
    s = sink.wait_for(lambda: sink.sessions(user="sdk-ok"))[0]
    assert s["enduser_id"] == "carol"
    assert sink.sessions(user="sdk-refused") == []


def test_optional_mode_accepts_anonymous_but_not_forged(sinks):
    sink = sinks[1]
    anonymous = SessionSpec(user="anon")
    assert send(sink, anonymous).status == 200
    assert send(sink, SessionSpec(user="forged"), bearer(token(key="x" * 32))).status == 401
    signed = SessionSpec(user="signed")
    assert send(sink, signed, bearer(token("dave"))).status == 200
    sink.wait_for(lambda: len(sink.sessions()) == 2)
    by_user = {s["user_name"]: (s["enduser_id"], s["verified"]) for s in sink.sessions()}
    assert by_user == {"anon": ("", False), "signed": ("dave", True)}


def test_rs256_es256_pem_keys_and_jwks(sinks):
    sink = sinks[2]
    keys = sink.keys
    cases = {"rs": token("rs-user", key=keys.rsa, alg="RS256"),
             "es": token("es-user", key=keys.ec, alg="ES256"),
             "jwks": token("jwks-user", key=keys.jwks, alg="RS256", headers={"kid": "k1"})}
    for name, tok in cases.items():
        assert send(sink, SessionSpec(user=name), bearer(tok)).status == 200, name
    # HS256 with the RSA public key as the secret (algorithm confusion) must fail.
    confused = jwt.encode({"sub": "root", "aud": "shellspan", "exp": int(time.time()) + 300},
                          "not-the-key-but-hs256-not-configured", algorithm="HS256")
    assert send(sink, SessionSpec(user="confused"), bearer(confused)).status == 401
    sink.wait_for(lambda: len(sink.sessions()) == 3)
    assert {s["user_name"]: s["enduser_id"] for s in sink.sessions()} == {
        "rs": "rs-user", "es": "es-user", "jwks": "jwks-user"}


def test_misconfigured_auth_stops_the_sink_with_a_clear_message(tmp_path):
    proc = SinkProcess(tmp_path, env={"SHELLSPAN_AUTH_MODE": "required"})
    with pytest.raises(RuntimeError) as err:
        proc.start(timeout=30)
    assert "needs a key" in str(err.value)


def _status(sink: SinkProcess, path: str, tok: str | None, data: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(sink.api_url + path, data=data,
                                     method="POST" if data else "GET")
    if tok is not None:
        request.add_header("Authorization", f"Bearer {tok}")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.parametrize("name,claims,message", [
    ("scope a number", {"scope": 1}, "scope"),
    ("sub a number", {"sub": 7}, "sub"),
    ("sub a list", {"sub": ["reader"]}, "sub"),
    ("exp a string", {"exp": str(int(time.time()) + 300)}, "exp"),
    ("year 9999", {"exp": 253402300799}, "longer than"),
])
def test_bad_claims_are_401_with_a_message_never_500(sink, name, claims, message):
    from jwt.api_jws import PyJWS  # PyJWT's own encoder refuses some of these claims

    now = int(time.time())
    payload = {"sub": "reader", "aud": "shellspan", "iat": now, "exp": now + 300,
               "scope": "sessions:read", **claims}
    tok = PyJWS().encode(json.dumps(payload).encode(), SECRET, algorithm="HS256")
    status, body = _status(sink, "/api/sessions", tok)
    assert status == 401 and message in body["error"], (name, body)
    reply = send(sink, SessionSpec(user=f"bad-claims-{name}"), bearer(tok))
    assert reply.status == 401, name


def test_sql_needs_its_own_scope(sink):
    statement = b"SELECT 1 AS one"
    status, body = _status(sink, "/api/sql", token("reader", scope="sessions:read"), statement)
    assert status == 401 and "sessions:sql" in body["error"]
    status, body = _status(sink, "/api/sql", token("analyst", scope="sessions:sql"), statement)
    assert status == 401  # SQL is an API route: reading is needed too
    both = token("analyst", scope="sessions:read sessions:sql")
    status, body = _status(sink, "/api/sql", both, statement)
    assert status == 200 and body["rows"] == [[1]], body


def test_the_vouching_host_is_stamped_and_a_claimed_one_dropped(sink):
    forged = [kv(semconv.AUTH_HOST, "forged-host"), kv(semconv.AUTH_VERIFIED, "true")]
    for user, claims in (("host-claimed", {"host": "web-7"}), ("host-none", {})):
        spans = session_spans(SessionSpec(user=user))
        for span in spans:
            span.attributes.extend(forged)
        assert send(sink, SessionSpec(user=user), bearer(token("alice", **claims)), spans).status == 200
    for user, expected in (("host-claimed", "web-7"), ("host-none", None)):
        s = sink.wait_for(lambda u=user: sink.sessions(user=u))[0]
        attrs = sink.session(s["session_id"])["session"]["attributes"]
        assert attrs.get(semconv.AUTH_HOST) == expected, attrs
