"""The live API through a real sink: Server-Sent Events for one session and for the sessions
list, with spans sent over OTLP while the streams are open; the CLI's --follow and --watch."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import urllib.parse

import pytest

from shellspan import semconv
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess
from shellspan_testing.sse import SseListener

HEARTBEAT_S = 0.5


def Listener(sink: SinkProcess, path: str, last_event_id: str | None = None,  # noqa: N802
             token: str | None = None) -> SseListener:
    return SseListener(sink.api_port, path, last_event_id, token)


def spans_of(spec: SessionSpec) -> tuple[list, list, list]:
    """(start span, command spans, root span) of a session."""
    spans = session_spans(spec)
    return spans[:1], spans[1:len(spec.commands) + 1], spans[len(spec.commands) + 1:]


def send(sink: SinkProcess, spans: list) -> None:
    reply = post(sink.otlp_http_endpoint, request_for(spans).SerializeToString())
    assert reply.status == 200, reply.body


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("live"),
                       extra_args=["--abandon-after", "3", "--max-streams", "4",
                                   "--stream-heartbeat", str(HEARTBEAT_S),
                                   "--live-poll", "0.5"]).start()
    yield proc
    proc.stop()


@pytest.mark.slow
def test_a_followed_session_streams_its_commands_state_and_end(sink):
    spec = SessionSpec(user="follow", commands=[Command("ls"), Command("make", exit_code=2),
                                                Command("git push")], duration_s=5)
    start, commands, root = spans_of(spec)
    send(sink, start + commands[:1])
    sink.wait_for(lambda: sink.sessions(user="follow"))
    stream = Listener(sink, f"/api/sessions/{spec.session_id}/events")
    try:
        assert stream.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream"
        first = stream.next("session")
        assert first.data["session_id"] == spec.session_id and first.data["state"] == "active"
        assert first.data["attributes"][semconv.USER_NAME] == "follow"
        assert stream.next("command").data["command"] == "ls"
        send(sink, commands[1:2])
        second = stream.next("command")
        assert (second.data["command"], second.data["exit_code"]) == ("make", 2)
        send(sink, commands[1:3])  # one re-delivered, one new: the copy is not sent again
        assert stream.next("command").data["command"] == "git push"
        assert stream.next("state", timeout=30).data["state"] == "abandoned"  # 3 s of silence
        send(sink, root)
        end = stream.next("end")
        assert end.data["state"] == "ended" and end.data["command_count"] == 3
        assert stream.done.wait(10), "the stream closes after the end"
        assert stream.events.empty()
        assert any(line.startswith(b": keep-alive") for line in stream.lines)
    finally:
        stream.close()


def test_resuming_with_last_event_id_sends_only_what_was_missed(sink):
    spec = SessionSpec(user="resume", commands=[Command(f"echo {i}") for i in range(4)])
    start, commands, _root = spans_of(spec)
    send(sink, start + commands[:2])
    sink.wait_for(lambda: sink.sessions(user="resume"))
    first = Listener(sink, f"/api/sessions/{spec.session_id}/events")
    try:
        first.next("session")
        got = [first.next("command") for _ in range(2)]
        assert [e.data["command"] for e in got] == ["echo 0", "echo 1"]
        resume_at = got[-1].id
    finally:
        first.close()
    send(sink, commands[2:])
    sink.wait_for(lambda: sink.session(spec.session_id)["session"]["command_count"] == 4)
    again = Listener(sink, f"/api/sessions/{spec.session_id}/events", last_event_id=resume_at)
    try:
        again.next("session")
        assert [again.next("command").data["command"] for _ in range(2)] == ["echo 2", "echo 3"]
        with pytest.raises(queue.Empty):
            again.events.get(timeout=HEARTBEAT_S * 3)
    finally:
        again.close()


def test_an_ended_session_streams_once_and_closes(sink):
    spec = SessionSpec(user="done", commands=[Command("true")])
    send(sink, session_spans(spec))
    sink.wait_for(lambda: sink.sessions(user="done"))
    stream = Listener(sink, f"/api/sessions/{spec.session_id}/events")
    try:
        assert [stream.next().kind for _ in range(3)] == ["session", "command", "end"]
        assert stream.done.wait(10)
    finally:
        stream.close()


@pytest.mark.parametrize("session_id,status", [("0" * 32, 404), ("' OR '1'='1", 400),
                                               ("g" * 32, 400)])
def test_unknown_or_invalid_sessions_are_refused(sink, session_id, status):
    stream = Listener(sink, f"/api/sessions/{urllib.parse.quote(session_id)}/events")
    try:
        assert stream.status == status
        assert "error" in json.loads(stream.response.read())
    finally:
        stream.close()


def test_the_number_of_streams_is_bounded(sink):
    spec = SessionSpec(user="bounded", ended=False, commands=[Command("top")])
    send(sink, session_spans(spec))
    sink.wait_for(lambda: sink.sessions(user="bounded"))
    path = f"/api/sessions/{spec.session_id}/events"
    # Streams of earlier tests are gone once their clients are (noticed within a heartbeat).
    sink.wait_for(lambda: sink.get("/health")["live"]["streams"] == 0, timeout=30)
    streams = [Listener(sink, path) for _ in range(4)]
    try:
        for s in streams:
            assert s.status == 200
            s.next("session")
        refused = Listener(sink, path)
        assert refused.status == 503 and refused.response.getheader("Retry-After")
        refused.close()
    finally:
        for s in streams:
            s.close()
    # Slots free up once the clients are gone.
    sink.wait_for(lambda: sink.get("/health")["live"]["streams"] == 0, timeout=30)
    later = Listener(sink, path)
    assert later.status == 200
    later.close()


@pytest.mark.slow
def test_the_changes_stream_sends_rows_of_sessions_that_change(sink):
    watcher = Listener(sink, "/api/changes?host=live-host")
    try:
        ready = watcher.next("ready")
        assert ready.id and ready.id.isdigit()
        other = SessionSpec(user="elsewhere", host="other-host", commands=[Command("ls")])
        spec = SessionSpec(user="watched", host="live-host", ended=False,
                           commands=[Command("uptime")])
        start, commands, _ = spans_of(spec)
        send(sink, session_spans(other) + start)
        rows = watcher.next("sessions").data["sessions"]
        assert [r["session_id"] for r in rows] == [spec.session_id]
        assert rows[0]["state"] == "active" and rows[0]["command_count"] == 0
        send(sink, commands)
        row = watcher.next("sessions").data["sessions"][0]
        assert (row["session_id"], row["command_count"]) == (spec.session_id, 1)
        # No spans, only the clock: the session turns abandoned, and the watcher hears of it.
        row = watcher.next("sessions", timeout=30).data["sessions"][0]
        assert (row["session_id"], row["state"]) == (spec.session_id, "abandoned")
    finally:
        watcher.close()


def test_a_tag_filter_on_the_changes_stream_sends_only_tagged_sessions(sink):
    tagged = SessionSpec(user="tag-watch", ended=False, commands=[Command("uptime")])
    plain = SessionSpec(user="tag-watch", ended=False, commands=[Command("id")])
    start_t, commands_t, _ = spans_of(tagged)
    start_p, commands_p, _ = spans_of(plain)
    send(sink, start_t + start_p)
    sink.wait_for(lambda: len(sink.sessions(user="tag-watch")) == 2)
    assert sink.call(f"/api/sessions/{tagged.session_id}/annotations",
                     body={"tags": ["inc-42"]})[0] == 201
    watcher = Listener(sink, "/api/changes?tag=inc-42")
    try:
        watcher.next("ready")
        send(sink, commands_p + commands_t)  # both change; only the tagged one is sent
        rows = watcher.next("sessions").data["sessions"]
        assert [(r["session_id"], r["command_count"]) for r in rows] == [(tagged.session_id, 1)]
    finally:
        watcher.close()


def test_a_watcher_resumes_from_its_last_event_id(sink):
    watcher = Listener(sink, "/api/changes?user=resumer")
    ready = watcher.next("ready")
    watcher.close()
    spec = SessionSpec(user="resumer", commands=[Command("id")])
    send(sink, session_spans(spec))
    sink.wait_for(lambda: sink.sessions(user="resumer"))
    again = Listener(sink, "/api/changes?user=resumer", last_event_id=ready.id)
    try:
        missed = again.next("sessions").data["sessions"]
        assert [r["session_id"] for r in missed] == [spec.session_id]
        again.next("ready")
    finally:
        again.close()
    stale = Listener(sink, "/api/changes", last_event_id="1")
    try:
        assert stale.next().kind == "reset"
    finally:
        stale.close()


@pytest.mark.parametrize("query", ["state=bogus", "since=yesterday", "cursor=1-" + "a" * 32,
                                   "user=x&order=1"])
def test_the_changes_stream_checks_its_filters(sink, query):
    stream = Listener(sink, f"/api/changes?{query}")
    try:
        assert stream.status == 400
    finally:
        stream.close()


def cli(sink: SinkProcess, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(SINK_BIN), *args, "--api", sink.api_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen, predicate, timeout: float = 30.0) -> list[str]:
    """Lines of the process's output until one satisfies `predicate` (read on a thread)."""
    lines: list[str] = []
    found = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if predicate(lines[-1]):
                found.set()
                return
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    if not found.wait(timeout):
        raise TimeoutError(f"not seen within {timeout}s; output so far: {lines}")
    return lines


def test_cli_follow_prints_commands_as_they_arrive_and_the_end(sink):
    spec = SessionSpec(user="cli-follow", commands=[Command("hostname"), Command("false",
                                                                                   exit_code=1)])
    start, commands, root = spans_of(spec)
    send(sink, start + commands[:1])
    sink.wait_for(lambda: sink.sessions(user="cli-follow"))
    proc = cli(sink, "sessions", "show", spec.session_id, "--follow")
    try:
        head = read_until(proc, lambda line: "hostname" in line)
        assert head[0].startswith(f"session {spec.session_id}") and "SEQ" in head[1]
        send(sink, commands[1:])
        assert read_until(proc, lambda line: "false" in line)[-1].split()[0] == "2"
        send(sink, root)
        end = read_until(proc, lambda line: line.startswith("-- ended"))[-1]
        assert "exit" in end and "2 commands, 1 failed" in end
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_cli_follow_json_and_unknown_session(sink):
    spec = SessionSpec(user="cli-json", commands=[Command("w")])
    send(sink, session_spans(spec))
    sink.wait_for(lambda: sink.sessions(user="cli-json"))
    done = subprocess.run([str(SINK_BIN), "sessions", "show", spec.session_id, "--follow",
                           "--format", "json", "--api", sink.api_url],
                          capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["session", "command", "end"]
    missing = subprocess.run([str(SINK_BIN), "sessions", "show", "0" * 32, "--follow",
                              "--api", sink.api_url], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_cli_watch_shows_active_sessions_as_they_come_and_go(sink):
    proc = cli(sink, "sessions", "list", "--state", "active", "--watch", "--host", "watch-host")
    try:
        read_until(proc, lambda line: line.startswith("-- "))  # the first, empty version
        spec = SessionSpec(user="watch-me", host="watch-host", ended=False,
                           commands=[Command("vim")])
        start, commands, _ = spans_of(spec)
        send(sink, start)
        read_until(proc, lambda line: line.startswith(spec.session_id))
        root = [s for s in session_spans(SessionSpec(
            user="watch-me", host="watch-host", trace_id=spec.trace_id)) if
            s.name == semconv.SPAN_SESSION]
        send(sink, root)  # it ends: the next version of the list no longer has it
        lines = read_until(proc, lambda line: line == "(none)")
        assert lines[-1] == "(none)"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streams_need_the_read_scope_when_auth_is_required(tmp_path):
    import jwt

    secret = "live-" + os.urandom(16).hex()
    sink = SinkProcess(tmp_path / "auth", env={"SHELLSPAN_AUTH_SECRET": secret,
                                               "SHELLSPAN_AUTH_MODE": "required"}).start()
    try:
        for path in (f"/api/sessions/{'a' * 32}/events", "/api/changes"):
            anonymous = Listener(sink, path)
            assert anonymous.status == 401
            anonymous.close()
        token = jwt.encode({"sub": "reader", "aud": "shellspan", "scope": "sessions:read",
                            "exp": int(time.time()) + 300}, secret, algorithm="HS256")
        reader = Listener(sink, "/api/changes", token=token)
        try:
            assert reader.status == 200 and reader.next("ready")
        finally:
            reader.close()
    finally:
        sink.stop()


def test_health_reports_the_live_streams(sink):
    live = sink.get("/health")["live"]
    assert live["max_streams"] == 4 and live["streams"] >= 0 and live["errors"] == 0
