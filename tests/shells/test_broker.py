"""The token broker as a real process: its keys and their permissions, its socket, its line
protocol, and clients that are slow, greedy or hostile."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from shellspan.auth import request_broker_token
from shellspan_sink.auth import AuthConfig, Verifier
from shellspan_testing.brokerproc import SHELLSPAN, BrokerProcess


@pytest.fixture
def broker():
    proc = BrokerProcess(ttl_s=60).start()
    yield proc
    proc.close()


def verify(token: str, **config) -> dict:
    return Verifier(AuthConfig(mode="required", **config)).claims(f"Bearer {token}")


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def ask(path: str, request: bytes) -> str:
    with connect(path) as s:
        s.sendall(request)
        return s.makefile("rb").readline().decode()


def test_first_start_creates_a_private_key_and_publishes_its_public_half(broker):
    st = os.stat(broker.key)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert stat.S_IMODE(os.stat(broker.public_pem).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(broker.socket).st_mode) == 0o666  # every local user may ask
    jwks = json.loads(broker.jwks.read_text())
    (jwk,) = jwks["keys"]
    assert jwk["alg"] == "ES256" and jwk["kid"] and "d" not in jwk  # nothing private in it
    token, ttl = request_broker_token(broker.socket)
    assert ttl == 60
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == jwk["kid"]
    for config in ({"public_key_files": [str(broker.public_pem)]}, {"jwks_file": str(broker.jwks)}):
        claims = verify(token, **config)
        assert claims["uid"] == os.geteuid() and claims["host"] == os.uname().nodename
        assert claims["exp"] - claims["iat"] == 60
    printed = subprocess.run([SHELLSPAN, "broker", "public-key", "--key", str(broker.key), "--jwks"],
                             capture_output=True, text=True, timeout=60)
    assert json.loads(printed.stdout) == jwks


def test_rs256_keys_work_too(tmp_path):
    proc = BrokerProcess(alg="RS256").start()
    try:
        token, _ = request_broker_token(proc.socket)
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        assert verify(token, jwks_file=str(proc.jwks))["sub"]
    finally:
        proc.close()


def test_the_request_line_chooses_nothing(broker):
    reply = ask(broker.socket, b"TOKEN sub=root uid=0 host=elsewhere\n")
    assert reply.startswith("OK 60 ")
    claims = jwt.decode(reply.split()[2], options={"verify_signature": False})
    assert claims["uid"] == os.geteuid() and claims["host"] == os.uname().nodename


def test_bad_requests_get_a_clear_answer(broker):
    assert ask(broker.socket, b"GIVE ME ROOT\n") == "ERR unknown request: send TOKEN\n"
    assert ask(broker.socket, b"TOKEN" + b"x" * 1000 + b"\n").startswith("ERR requests are at most")
    with connect(broker.socket) as s:  # a request cut short
        s.sendall(b"TOK")
        s.shutdown(socket.SHUT_WR)
        assert s.makefile("rb").readline().startswith(b"ERR ")
    assert ask(broker.socket, b"TOKEN\n").startswith("OK ")  # and it still serves


def test_slow_and_greedy_clients_do_not_hold_up_others(broker):
    idle = [connect(broker.socket) for _ in range(8)]  # the most one uid may hold open
    try:
        with connect(broker.socket) as extra:  # one more from the same uid is turned away
            assert extra.recv(100) == b""
        if os.geteuid() == 0:  # another uid is served at once
            other = subprocess.run(
                ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
                 "import socket; s = socket.socket(socket.AF_UNIX); "
                 f"s.connect({broker.socket!r}); s.sendall(b'TOKEN\\n'); "
                 "print(s.makefile().readline())"],
                capture_output=True, text=True, timeout=20)
            assert other.stdout.startswith("OK "), other.stderr
        # The silent connections are closed by the broker after its deadline...
        started = time.monotonic()
        for s in idle:
            assert s.recv(100) == b""
        assert time.monotonic() - started < 20
    finally:
        for s in idle:
            s.close()
    assert request_broker_token(broker.socket)[0]  # ...and their uid is served again
    assert "busy: refusing connections" in broker.log()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_readable_by_others_is_refused(tmp_path, mode):
    key = tmp_path / "host.key"
    made = subprocess.run([SHELLSPAN, "broker", "keygen", "--key", str(key)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and "kid" in made.stdout
    key.chmod(mode)
    run = subprocess.run([SHELLSPAN, "broker", "--key", str(key), "--socket",
                          str(tmp_path / "b.sock")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "chmod 600" in run.stderr
    assert not (tmp_path / "b.sock").exists()


def test_a_key_owned_by_someone_else_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the key to another user")
    key = tmp_path / "host.key"
    subprocess.run([SHELLSPAN, "broker", "keygen", "--key", str(key)], check=True,
                   capture_output=True, timeout=60)
    os.chown(key, 65534, 65534)
    run = subprocess.run([SHELLSPAN, "broker", "--key", str(key), "--socket",
                          str(tmp_path / "b.sock")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "belongs to uid 65534" in run.stderr


def test_keygen_does_not_overwrite_a_key_by_accident(tmp_path):
    key = tmp_path / "keys" / "host.key"
    first = subprocess.run([SHELLSPAN, "broker", "keygen", "--key", str(key)],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0
    pem = key.read_bytes()
    again = subprocess.run([SHELLSPAN, "broker", "keygen", "--key", str(key)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--force" in again.stderr and key.read_bytes() == pem
    forced = subprocess.run([SHELLSPAN, "broker", "keygen", "--key", str(key), "--force"],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0 and key.read_bytes() != pem
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_one_broker_per_socket_and_a_clean_stop(broker):
    second = subprocess.run([SHELLSPAN, "broker", "--socket", broker.socket, "--key",
                             str(broker.key)], capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "another broker is listening" in second.stderr
    assert request_broker_token(broker.socket)[0]  # the first one is untouched
    assert broker.stop() == 0 and not Path(broker.socket).exists()


def test_a_socket_directory_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    run = subprocess.run([SHELLSPAN, "broker", "--key", str(tmp_path / "k.key"), "--socket",
                          str(shared / "b.sock")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "writable by it alone" in run.stderr
