"""The access log through the real sink: every read of a session's commands is recorded (who,
when, what, which door), listed only with the sessions:audit scope, and not lost when the sink
is killed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.recordings import RecordedCommand, logs_request, post_logs, recorded_session
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess
from shellspan_testing.sse import SseListener
from shellspan_testing.tokens import mint

SECRET = "access-log-tests-secret-0123456789abcdef"
ONE = SessionSpec(user="alice", commands=[Command("cat /etc/shadow"), Command("id")])
TWO = SessionSpec(user="bob", commands=[Command("cat notes.txt")])


def token(sub: str, scope: str) -> str:
    return mint(SECRET, sub, scope)


READER = token("rita", "sessions:read")
AUDITOR = token("audrey", "sessions:read sessions:audit")


def load(sink: SinkProcess) -> None:
    spans = session_spans(ONE) + session_spans(TWO)
    assert post(sink.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    sink.wait_for(lambda: len(sink.sessions()) == 2)


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("access"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    proc.read_token = READER
    proc.start()
    load(proc)
    yield proc
    proc.stop()


def events(sink: SinkProcess, **filters) -> list[dict]:
    status, body = sink.call("/api/access-log", params=filters, token=AUDITOR)
    assert status == 200, body
    return body["events"]


def wait_events(sink: SinkProcess, count: int = 1, **filters) -> list[dict]:
    return sink.wait_for(lambda: len(found := events(sink, **filters)) >= count and found)


def test_showing_a_session_is_recorded_with_who_and_how(sink):
    assert sink.call(f"/api/sessions/{ONE.session_id}")[0] == 200
    (event,) = wait_events(sink, session=ONE.session_id, action="show")
    assert (event["subject"], event["verified"], event["door"], event["client_address"]) == \
        ("rita", True, "api", "127.0.0.1")
    assert event["session_ids"] == [ONE.session_id]
    assert abs(time.time() - time.mktime(time.strptime(event["time"][:19], "%Y-%m-%dT%H:%M:%S"))
               + time.timezone) < 120


def test_a_search_is_recorded_with_the_sessions_it_revealed(sink):
    status, page = sink.call("/api/commands", params={"q": "cat "})
    assert status == 200 and page["count"] == 2
    (event,) = wait_events(sink, action="search", subject="rita")
    assert sorted(event["session_ids"]) == sorted([ONE.session_id, TWO.session_id])
    assert event["detail"]["q"] == "cat " and event["detail"]["hits"] == 2


def test_the_door_is_what_the_client_says_and_the_subject_what_the_token_says(sink):
    for door in ("ui", "cli", "bogus"):
        headers = {"X-Shellspan-Client": door}
        assert sink.call(f"/api/sessions/{TWO.session_id}", headers=headers)[0] == 200
    doors = wait_events(sink, 3, session=TWO.session_id, action="show")
    assert sorted(e["door"] for e in doors) == ["api", "cli", "ui"]
    assert {e["subject"] for e in doors} == {"rita"}


def test_listing_sessions_and_a_missing_session_are_not_reads_of_commands(sink):
    sink.sessions()
    assert sink.call(f"/api/sessions/{'0' * 32}")[0] == 404
    wait_events(sink, session=ONE.session_id)  # the writer has caught up
    assert events(sink, session="0" * 32) == []


def test_reading_a_recording_is_recorded(sink):
    rec = recorded_session([RecordedCommand("cat secret-plan.txt", b"step one\r\n")],
                           user="dora")
    assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString()).status == 200
    assert post_logs(sink.otlp_http_endpoint,
                     logs_request(rec.records).SerializeToString()).status == 200
    sink.wait_for(lambda: sink.call(f"/api/sessions/{rec.session_id}/excerpt",
                                    params={"seq": 1})[0] == 200)
    assert sink.call(f"/api/sessions/{rec.session_id}/screen", params={"seq": 1})[0] == 200
    status, ctype, _ = sink.fetch(f"/api/sessions/{rec.session_id}/recording")
    assert status == 200
    actions = {e["action"] for e in wait_events(sink, 3, session=rec.session_id)}
    assert actions == {"excerpt", "screen", "recording"}
    assert sink.call(f"/api/sessions/{'0' * 32}/recording")[0] == 404
    assert events(sink, session="0" * 32) == []  # no such session: nothing read, nothing logged


def test_following_a_session_live_is_recorded(sink):
    listener = SseListener(sink.api_port, f"/api/sessions/{TWO.session_id}/events", token=READER)
    try:
        assert listener.status == 200 and listener.next("session")
    finally:
        listener.close()
    (event,) = wait_events(sink, session=TWO.session_id, action="follow")
    assert (event["subject"], event["verified"]) == ("rita", True)
    missing = SseListener(sink.api_port, f"/api/sessions/{'0' * 32}/events", token=READER)
    missing.close()
    assert missing.status == 404
    assert events(sink, session="0" * 32, action="follow") == []


def test_sql_statements_are_recorded_with_their_text(sink):
    analyst = token("ana", "sessions:read sessions:sql")
    statement = "SELECT count() FROM shellspan.shell_commands"
    status, _ = sink.call("/api/sql", body=statement.encode(), token=analyst)
    assert status == 200
    (event,) = wait_events(sink, subject="ana", action="sql")
    assert event["detail"]["statement"] == statement and event["session_ids"] == []
    assert sink.call("/api/sql", body=b"DROP TABLE shellspan.shell_commands", token=analyst)[0] == 400
    assert sink.call("/api/sql", body=statement.encode(), token=READER)[0] == 401  # no sql scope
    assert sink.call(f"/api/sessions/{TWO.session_id}", token=analyst)[0] == 200
    wait_events(sink, subject="ana", action="show")  # recorded after the refusals, so ...
    assert len(events(sink, subject="ana", action="sql")) == 1  # ... the refused read nothing
    assert events(sink, subject="rita", action="sql") == []


def test_the_log_needs_the_audit_scope(sink):
    assert sink.call("/api/access-log", token=READER)[0] == 401
    assert sink.call("/api/access-log", token=token("x", "sessions:audit"))[0] == 401  # read too
    assert sink.call("/api/access-log", token=AUDITOR)[0] == 200


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "x"}, {"since": "nan"},
                                    {"subject": "x" * 2000}, {"who": "x"}])
def test_bad_filters_are_400(sink, params):
    status, body = sink.call("/api/access-log", params=params, token=AUDITOR)
    assert status == 400 and body["error"], body


def test_cli_reads_are_recorded_as_cli_and_the_auditor_lists_them(sink):
    def cli(*args: str, tok: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SINK_BIN), *args, "--api", sink.api_url, "--token", tok],
                              capture_output=True, text=True, timeout=60, check=True)

    cli("sessions", "show", ONE.session_id, tok=READER)
    wait_events(sink, session=ONE.session_id, door="cli")
    listed = json.loads(cli("access-log", "--session", ONE.session_id, "--door", "cli",
                            "--format", "json", tok=AUDITOR).stdout)
    assert listed and listed[0]["subject"] == "rita" and listed[0]["action"] == "show"
    table = cli("access-log", "--subject", "rita", tok=AUDITOR).stdout
    assert table.splitlines()[0].split()[:3] == ["TIME", "SUBJECT", "VERIFIED"]


def journal(sink: SinkProcess) -> Path:
    return Path(sink.store.removeprefix("chdb://") + "-wal") / "access-log"


@pytest.mark.slow
def test_no_event_is_lost_when_the_sink_is_killed_and_a_torn_line_is_skipped(sink_factory):
    first = sink_factory("killed")
    load(first)
    for _ in range(5):  # read, and kill the sink the moment the answers are in
        assert first.call(f"/api/sessions/{ONE.session_id}")[0] == 200
    first.stop(signal.SIGKILL)
    pending = b"".join(p.read_bytes() for p in journal(first).iterdir() if p.is_file())
    ids = {json.loads(line)["event_id"] for line in pending.splitlines()}
    # A journal line a crash cut short, after one whole event left behind:
    left = {"event_id": uuid.uuid4().hex, "time": round(time.time(), 3), "subject": "night-op",
            "verified": 1, "door": "cli", "action": "show", "session_ids": [TWO.session_id],
            "detail": "{}", "client_address": "local"}
    with open(journal(first) / "current.jsonl", "ab") as fh:
        fh.write((json.dumps(left) + "\n").encode() + b'{"event_id": "torn')

    again = sink_factory("killed")  # the same data directory: store, WAL and journal
    assert again.call(f"/api/sessions/{TWO.session_id}")[0] == 200  # not glued to the torn line
    again.wait_for(lambda: again.get("/api/access-log", session=TWO.session_id, door="api")["events"])
    found = again.wait_for(lambda: len(e := again.get("/api/access-log", session=ONE.session_id,
                                                      limit=100)["events"]) >= 5 and e)
    assert len(found) == 5  # each read once, whether it was inserted before the kill or after
    assert ids <= {e["event_id"] for e in found}
    (event,) = again.wait_for(lambda: again.get("/api/access-log", subject="night-op")["events"])
    assert event["event_id"] == left["event_id"] and event["session_ids"] == [TWO.session_id]
    assert "unreadable line" in again.log()


@pytest.mark.slow
def test_a_read_that_cannot_be_recorded_is_refused(sink_factory):
    proc = sink_factory("unrecordable")
    load(proc)
    assert proc.call(f"/api/sessions/{ONE.session_id}")[0] == 200
    current = journal(proc) / "current.jsonl"
    proc.wait_for(lambda: proc.get("/api/access-log")["events"] and not current.exists())
    current.mkdir()  # the journal cannot be opened any more
    status, body = proc.call(f"/api/sessions/{ONE.session_id}")
    assert status == 503 and "cannot record the access" in body["error"]
    assert proc.call("/api/commands", params={"q": "id"})[0] == 503
    current.rmdir()
    assert proc.call(f"/api/sessions/{ONE.session_id}")[0] == 200
    assert proc.wait_for(lambda: len(proc.get("/api/access-log")["events"]) == 2)
