"""Python shells when the endpoint is down, black-holed or rejecting, and under concurrency."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import jwt
import pytest

from shellspan.auth import login_name
from shellspan_testing.python_shell_helpers import (
    PROMPT,
    SHELLSPAN,
    run_session,
    shell_env,
    tagged,
)
from shellspan_testing.sinkproc import free_port

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

EXIT_LIMIT_S = 0.6  # generous for a loaded 2-core machine; the flush budget itself is 50 ms


def session_in_pty(env: dict[str, str], commands: list[str]) -> tuple[float, str]:
    """Run commands, then Ctrl-D; returns (seconds from Ctrl-D to exit, all output)."""
    took, out, status = run_session(env, commands)
    assert status == 0, status
    return took, out


@pytest.fixture(scope="module")
def sink(module_sink):
    return module_sink


def assert_full_session(sink, env: dict[str, str], commands: list[str],
                        timeout: float = 30.0) -> dict:
    def complete():
        found = tagged(sink, env, state="ended")
        if not found:
            return None
        d = sink.session(found[0]["session_id"])
        return d if len(d["commands"]) == len(commands) else None
    d = sink.wait_for(complete, timeout)
    assert d["session"]["exit_reason"] == "eof"
    assert [c["command"] for c in d["commands"]] == commands
    return d


def spool_files(env: dict[str, str]) -> list[str]:
    d = Path(env["SHELLSPAN_SPOOL_DIR"])
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


COMMANDS = ["a = 1", "b = a + 1", "print('spooled', b)"]


def test_endpoint_closed_exit_is_fast_and_a_later_session_resends(sink, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    env = shell_env(tmp_path, dead)
    took, out = session_in_pty(env, COMMANDS)
    assert took < EXIT_LIMIT_S, f"exit took {took:.3f}s"
    assert "Traceback" not in out and "shellspan" not in out
    assert spool_files(env), "nothing was spooled"
    assert not tagged(sink, env)

    later = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint,
                 OTEL_SERVICE_NAME="later" + uuid.uuid4().hex[:6],
                 SHELLSPAN_HEARTBEAT_INTERVAL="0.5")
    child = pexpect.spawn(SHELLSPAN, ["python", "-q"], env=later, encoding="utf-8", timeout=20)
    child.expect_exact(PROMPT)
    d = assert_full_session(sink, env, COMMANDS)
    assert d["session"]["duration_s"] > 0.1
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    deadline = time.monotonic() + 10
    while any(n.endswith(".otlp") or ".claimed-" in n for n in spool_files(env)):
        assert time.monotonic() < deadline, spool_files(env)
        time.sleep(0.1)


def test_black_hole_endpoint_exit_is_fast_and_spool_flush_resends(sink, tmp_path):
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # accepts connections (kernel backlog), never reads or answers
    try:
        env = shell_env(tmp_path, f"http://127.0.0.1:{hole.getsockname()[1]}")
        took, out = session_in_pty(env, COMMANDS)
        assert took < EXIT_LIMIT_S, f"exit took {took:.3f}s"
        assert "Traceback" not in out
        assert spool_files(env)
    finally:
        hole.close()
    flush_env = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint)

    def flushed():
        subprocess.run([SHELLSPAN, "spool", "flush"], env=flush_env, capture_output=True,
                       timeout=30)
        found = tagged(sink, env, state="ended")
        return found and len(sink.session(found[0]["session_id"])["commands"]) == len(COMMANDS)
    sink.wait_for(flushed, 30)
    assert_full_session(sink, env, COMMANDS)


def test_a_symlinked_spool_directory_is_refused_and_the_session_still_arrives(sink, tmp_path):
    """A symlink planted where the spool should be (say by another user, in a shared
    directory) must not receive session data: the shell says so once and spools privately."""
    exposed = tmp_path / "exposed"
    exposed.mkdir(mode=0o755)
    link = tmp_path / "spool-link"
    link.symlink_to(exposed)
    dead = f"http://127.0.0.1:{free_port()}"
    env = shell_env(tmp_path, dead, SHELLSPAN_SPOOL_DIR=str(link))
    child = pexpect.spawn(SHELLSPAN, ["python", "-q"], env=env, encoding="utf-8", timeout=20)
    child.expect_exact(PROMPT)
    warning = child.before
    for line in COMMANDS:
        child.sendline(line)
        child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert f"shellspan: spool directory refused: {link} is a symbolic link" in warning
    assert os.listdir(exposed) == []
    fallback = Path(env["HOME"]) / ".local" / "state" / "shellspan" / "spool"
    entries = list(fallback.iterdir())
    assert entries and stat.S_IMODE(fallback.stat().st_mode) == 0o700
    assert {stat.S_IMODE(e.stat().st_mode) for e in entries} == {0o600}
    flush_env = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint)
    done = subprocess.run([SHELLSPAN, "spool", "flush"], env=flush_env, capture_output=True,
                          text=True, timeout=60)
    assert "symbolic link" in done.stderr  # said by every process that is pointed there
    assert_full_session(sink, env, COMMANDS)
    assert os.listdir(exposed) == []


def test_invalid_token_is_rejected_and_the_shell_notices_nothing(sink_factory, tmp_path):
    secret = "s3cret-" + uuid.uuid4().hex
    secret_file = tmp_path / "secret"  # the shell side reads the secret from a 0600 file only
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    auth_sink = sink_factory("authsink", env={"SHELLSPAN_AUTH_SECRET_FILE": str(secret_file),
                                              "SHELLSPAN_AUTH_MODE": "required"})
    now = int(time.time())
    auth_sink.read_token = jwt.encode({"sub": "reader", "aud": "shellspan", "exp": now + 600,
                                       "scope": "sessions:read"}, secret, algorithm="HS256")
    bad = shell_env(tmp_path, auth_sink.otlp_http_endpoint, SHELLSPAN_AUTH_TOKEN="not.a.jwt")
    took, out = session_in_pty(bad, COMMANDS)
    assert took < EXIT_LIMIT_S and "Traceback" not in out and "401" not in out
    good = shell_env(tmp_path, auth_sink.otlp_http_endpoint,
                     SHELLSPAN_AUTH_SECRET_FILE=str(secret_file))
    took, out = session_in_pty(good, ["c = 3"])
    assert took < EXIT_LIMIT_S and "Traceback" not in out
    auth_sink.wait_for(lambda: tagged(auth_sink, good, state="ended"), 20)
    time.sleep(1.0)  # two spool segment ages: an accepted session would be stored by now
    assert not tagged(auth_sink, bad)
    good_session = tagged(auth_sink, good)[0]
    assert (good_session["enduser_id"], good_session["verified"]) == (login_name(), True)
    # A rejected batch is permanent: it is dropped, not spooled for ever.
    assert not [n for n in spool_files(bad) if n.endswith(".otlp")]


def test_fifty_concurrent_shells_are_fifty_sessions(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    procs = []
    for i in range(50):
        p = subprocess.Popen([SHELLSPAN, "python", "-q"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append((i, p))
    for i, p in procs:
        p.stdin.write(f"tag = 'shell-{i}'\nprint(tag * 2)\n")
        p.stdin.close()
    for _i, p in procs:
        assert p.wait(60) == 0, p.stderr.read()

    def all_there():
        found = tagged(sink, env, state="ended")
        return found if len(found) >= 50 else None
    sessions = sink.wait_for(all_there, 60)
    assert len(sessions) == 50 and len({s["session_id"] for s in sessions}) == 50
    seen = set()
    for s in sessions:
        cmds = sink.session(s["session_id"])["commands"]
        assert len(cmds) == 2, cmds
        tag = cmds[0]["command"].split("'")[1]
        assert cmds[1]["command"] == "print(tag * 2)"
        seen.add(tag)
    assert seen == {f"shell-{i}" for i in range(50)}
