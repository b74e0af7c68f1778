"""Identity without processes: where the shell side gets its tokens and whom they name, and the
sink's checks of a token's claims (types, lifetime, scopes, the host that vouched)."""

from __future__ import annotations

import base64
import json
import os
import pwd
import socket
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shellspan import auth, semconv
from shellspan.auth import TokenError, TokenSource, login_name, mint_token, read_secret_file
from shellspan.broker import SigningKey
from shellspan.config import Config
from shellspan_sink.auth import (
    READ_SCOPE,
    SQL_SCOPE,
    AuthConfig,
    AuthError,
    Verifier,
)

SECRET = "k" * 40
NOW = int(time.time())  # for values that are wrong whatever the time (collected once)


def now() -> int:
    """The time a test runs (the suite may run long after this module was imported)."""
    return int(time.time())


def secret_file(tmp_path, mode: int = 0o600, secret: str = SECRET):
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    path.chmod(mode)
    return str(path)


# --- the shell side ----------------------------------------------------------------------------


def test_login_name_comes_from_the_uid_not_from_the_environment(monkeypatch):
    for var in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.setenv(var, "alice-forged")
    assert login_name() == pwd.getpwuid(os.geteuid()).pw_name
    assert login_name(4_000_000_000) == "4000000000"  # no passwd entry: the uid itself


def test_a_minted_token_names_the_uid_its_host_and_lives_ttl(monkeypatch):
    monkeypatch.setenv("USER", "alice-forged")
    claims = jwt.decode(mint_token(SECRET, 60), SECRET, algorithms=["HS256"], audience="shellspan")
    assert claims["sub"] == login_name() and claims["uid"] == os.geteuid()
    assert claims["host"] == os.uname().nodename and claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_secret_file_open_to_others_is_refused(tmp_path, mode):
    with pytest.raises(TokenError, match="chmod 600"):
        read_secret_file(secret_file(tmp_path, mode))


def test_a_secret_file_must_hold_a_real_secret(tmp_path):
    assert read_secret_file(secret_file(tmp_path)) == SECRET
    with pytest.raises(TokenError, match="32"):
        read_secret_file(secret_file(tmp_path, secret="short"))
    with pytest.raises(TokenError, match="not a regular file"):
        read_secret_file(str(tmp_path))
    with pytest.raises(TokenError, match="cannot open"):
        read_secret_file(str(tmp_path / "missing"))


def test_the_secret_file_mints_for_the_uid_and_renews(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "alice-forged")
    src = TokenSource(broker_socket="off", secret_file=secret_file(tmp_path), ttl_s=60)
    first = src.get()
    assert src.source == "secret"
    assert jwt.decode(first, SECRET, algorithms=["HS256"], audience="shellspan")["sub"] == login_name()
    assert src.get() is first  # cached until half its life is gone
    src._renew_at = 0.0
    second = src.get()
    assert second is not first and src.source == "secret"
    assert "any identity" in src.describe()


def test_a_refused_secret_file_gives_no_token_and_says_why(tmp_path, capsys):
    src = TokenSource(broker_socket="off", secret_file=secret_file(tmp_path, 0o644))
    assert src.header() == {}
    assert "chmod 600" in src.last_error and "chmod 600" in capsys.readouterr().err


def test_a_secret_in_the_environment_is_ignored_with_one_warning(capsys, monkeypatch):
    monkeypatch.setattr(auth, "_warned", set())
    cfg = Config({"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_BROKER_SOCKET": "off"})
    for _ in range(3):
        assert TokenSource.from_config(cfg).get() is None
    err = capsys.readouterr().err
    assert err.count("SHELLSPAN_AUTH_SECRET in the environment is ignored") == 1
    assert SECRET not in err


def test_without_a_broker_a_ready_token_is_sent(tmp_path):
    src = TokenSource(broker_socket=str(tmp_path / "no-broker.sock"), token="ready")
    assert src.header() == {"Authorization": "Bearer ready"}
    assert src.source == "token" and "no broker socket" in src.last_error
    assert TokenSource(broker_socket="off").header() == {}


def test_a_socket_someone_else_owns_is_not_the_broker(tmp_path):
    path = tmp_path / "fake.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen(1)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
            with pytest.raises(TokenError, match="not root"):
                auth.request_broker_token(str(path))
        else:  # our own socket is accepted, but nobody answers: a clear error, no hang
            with pytest.raises(TokenError, match="did not answer"):
                auth.request_broker_token(str(path), timeout_s=0.2)


# --- the broker's key --------------------------------------------------------------------------


def test_broker_key_kid_is_the_rfc7638_thumbprint():
    key = SigningKey.generate("ES256")
    jwk = key.jwk
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"),
                           sort_keys=True)
    import hashlib

    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert key.kid == digest.decode() and jwk["alg"] == "ES256" and "d" not in jwk
    token = key.sign({"sub": "x", "aud": "shellspan", "iat": now(), "exp": now() + 60})
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    rsa = SigningKey.generate("RS256")
    assert rsa.algorithm == "RS256" and rsa.jwk["kty"] == "RSA" and "d" not in rsa.jwk


# --- the sink's checks -------------------------------------------------------------------------


def verifier(**config) -> Verifier:
    return Verifier(AuthConfig(secret=SECRET, mode="required", **config))


def raw_token(payload, key: str = SECRET, header: dict | None = None) -> str:
    """An HS256 token with exactly this payload (PyJWT's encoder would refuse some of them)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"Bearer {head}.{body}.{b64(sig)}"


def claims(**overrides) -> dict:
    base = {"sub": "alice", "aud": "shellspan", "iat": now(), "exp": now() + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("bad,message", [
    ({"sub": 1}, "sub"), ({"sub": ["alice"]}, "sub"), ({"sub": {"a": 1}}, "sub"),
    ({"sub": "a\tb"}, "printable"), ({"sub": "x" * 300}, "printable"), ({"sub": " "}, "sub"),
    ({"exp": str(NOW + 300)}, "exp"), ({"exp": True}, "exp"), ({"exp": [NOW]}, "exp"),
    ({"iat": True}, "iat"), ({"iat": "now"}, "iat"), ({"nbf": "x"}, "nbf"),
    ({"aud": 1}, "aud"), ({"aud": ["shellspan", 1]}, "aud"), ({"iss": 1}, "iss"),
    ({"scope": 1}, "scope"), ({"scope": ["sessions:read", 2]}, "scope"),
    ({"scope": {"sessions:read": True}}, "scope"), ({"host": 7}, "host"),
    ({"uid": "1000"}, "uid"), ({"uid": True}, "uid"), ({"jti": 5}, "jti"),
])
def test_claims_of_the_wrong_type_are_refused_with_a_message(bad, message):
    v = verifier()
    with pytest.raises(AuthError, match=message):
        v.identity(raw_token(claims(**bad)))
    with pytest.raises(AuthError, match=message):
        v.check_scope(raw_token(claims(**{"scope": READ_SCOPE, **bad})), READ_SCOPE)


@pytest.mark.parametrize("payload", [
    b"[1, 2, 3]", b'"just a string"', b"not json", b"[" * 5000 + b"]" * 5000,
    b'{"sub": "a", "exp": 1e400}',
])
def test_malformed_payloads_are_refused_never_raised(payload):
    with pytest.raises(AuthError):
        verifier().identity(raw_token(payload))


@pytest.mark.parametrize("header", [{"alg": ["HS256"]}, {"alg": "HS256", "kid": ["a"]},
                                    {"alg": "none"}])
def test_malformed_headers_are_refused(header):
    with pytest.raises(AuthError):
        verifier().identity(raw_token(claims(), header=header))


def test_token_lifetime_is_bounded():
    v = verifier()
    assert v.identity(raw_token(claims(exp=now() + 86400)))[semconv.ENDUSER_ID] == "alice"
    with pytest.raises(AuthError, match="longer than the 86400 s allowed"):
        v.identity(raw_token(claims(exp=253402300799)))  # the year 9999
    with pytest.raises(AuthError, match="no iat"):
        v.identity(raw_token(claims(iat=None, exp=now() + 2 * 86400)))
    assert v.identity(raw_token(claims(iat=None, exp=now() + 3600)))
    short = verifier(max_lifetime=600)
    with pytest.raises(AuthError, match="600 s"):
        short.identity(raw_token(claims(exp=now() + 601)))
    with pytest.raises(ValueError, match="MAX_LIFETIME"):
        verifier(max_lifetime=0)


def test_the_host_claim_is_stamped_beside_the_subject():
    v = verifier()
    assert v.identity(raw_token(claims(host="web-1", uid=1001))) == {
        semconv.ENDUSER_ID: "alice", semconv.AUTH_VERIFIED: "true", semconv.AUTH_HOST: "web-1"}
    assert semconv.AUTH_HOST not in v.identity(raw_token(claims()))
    assert semconv.AUTH_KEY_ID not in v.identity(raw_token(claims()))  # a shared secret: no key id
    assert {semconv.AUTH_HOST, semconv.AUTH_KEY_ID} <= set(semconv.SINK_OWNED)  # clients' dropped


def test_scopes_are_separate():
    v = verifier()
    read, sql = raw_token(claims(scope=READ_SCOPE)), raw_token(claims(scope=[READ_SCOPE, SQL_SCOPE]))
    v.check_scope(read, READ_SCOPE)
    v.check_scope(sql, SQL_SCOPE)
    with pytest.raises(AuthError, match="sessions:sql"):
        v.check_scope(read, SQL_SCOPE)  # reading sessions does not grant SQL
    with pytest.raises(AuthError, match="sessions:read"):
        v.check_scope(raw_token(claims()), READ_SCOPE)  # a shell's token reads nothing
    with pytest.raises(AuthError, match="required"):
        v.check_scope(None, READ_SCOPE)
    Verifier(AuthConfig(mode="off")).check_scope(None, SQL_SCOPE)  # auth off: nothing checked


def test_broker_tokens_verify_with_its_published_public_key(tmp_path):
    key = SigningKey.generate("ES256")
    pem = tmp_path / "host.pub.pem"
    pem.write_bytes(key.public_pem)
    jwks = tmp_path / "host.jwks.json"
    jwks.write_text(json.dumps(key.jwks()))
    token = "Bearer " + key.sign(claims(host="h1"))
    for cfg in (AuthConfig(public_key_files=[str(pem)]), AuthConfig(jwks_file=str(jwks))):
        stamped = Verifier(cfg).identity(token)
        assert stamped[semconv.AUTH_HOST] == "h1" and stamped[semconv.AUTH_KEY_ID] == key.kid
    other = ec.generate_private_key(ec.SECP256R1())
    forged = "Bearer " + jwt.encode(claims(), other, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(AuthError, match="invalid token"):
        Verifier(AuthConfig(jwks_file=str(jwks))).identity(forged)
    assert other.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo) != key.public_pem


def test_the_sink_reads_its_secret_from_a_private_file(tmp_path):
    v = Verifier(AuthConfig(secret_file=secret_file(tmp_path)))
    assert v.mode == "optional" and v.identity(raw_token(claims()))[semconv.ENDUSER_ID] == "alice"
    with pytest.raises(ValueError, match="chmod 600"):
        Verifier(AuthConfig(secret_file=secret_file(tmp_path, 0o644)))
    with pytest.raises(ValueError, match="not both"):
        Verifier(AuthConfig(secret=SECRET, secret_file=secret_file(tmp_path)))
