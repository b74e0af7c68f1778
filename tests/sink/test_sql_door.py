"""The analysts' SQL door against a real sink: what it refuses (and that it says what), the limits
ClickHouse enforces, and that nothing tried through it touches the writer: after each attempt a
session sent is stored and /health tells the truth."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from shellspan_sink.schema import SchemaOptions
from shellspan_sink.sqlgate import SqlGate, SqlLimits
from shellspan_sink.store import Store
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess

LIMITS = {"SHELLSPAN_SQL_MAX_SECONDS": "4", "SHELLSPAN_SQL_MAX_ROWS": "1000",
          "SHELLSPAN_SQL_MAX_MEMORY": str(200 * 1024 * 1024),
          "SHELLSPAN_SQL_MAX_RESULT_BYTES": str(1024 * 1024)}


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("sqldoor"), env=LIMITS).start()
    yield proc
    proc.stop()


def sql(sink: SinkProcess, statement: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{sink.api_url}/api/sql", data=statement.encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_still_writing(sink: SinkProcess) -> None:
    """A new session is acknowledged and stored, and /health says ok (and means it)."""
    user = f"writer-{uuid.uuid4().hex[:8]}"
    spec = SessionSpec(user=user, commands=[Command("true")])
    assert post(sink.otlp_http_endpoint, request_for(session_spans(spec)).SerializeToString()).status == 200
    stored = sink.wait_for(lambda: sink.sessions(user=user))
    assert stored[0]["command_count"] == 1
    status, health = sink.health()
    assert status == 200 and health["status"] == "ok", health
    assert health["wal"]["failed_inserts"] == 0, health


REFUSED = {
    "file table function": ("SELECT * FROM file('/etc/shadow', 'LineAsString')", "function file"),
    "the sink's environment": ("SELECT * FROM file('/proc/self/environ', 'RawBLOB')", "function file"),
    "file function": ("SELECT file('/etc/hostname')", "function file"),
    "url": ("SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')", "table function url"),
    "remote": ("SELECT * FROM remote('127.0.0.1:9000', system.one)", "table function remote"),
    "s3": ("SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv')", "table function s3"),
    "executable": ("SELECT * FROM executable('id', 'TSV', 'x String')", "table function executable"),
    "merge over system": ("SELECT * FROM merge('system', '.*')", "table function merge"),
    "dictGet": ("SELECT dictGet('d', 'x', 1)", "function dictGet"),
    "joinGet": ("SELECT joinGet('system.t', 'x', 1)", "function joinGet"),
    "SET": ("SET max_threads = 1", "not Set"),
    "SETTINGS": ("SELECT 1 SETTINGS max_threads = 1", "SETTINGS"),
    "SETTINGS in a subquery": ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "SETTINGS"),
    "two statements": ("SELECT 1; SELECT 2", "exactly one statement"),
    "system.processes": ("SELECT query FROM system.processes", "not system"),
    "system table in IN": ("SELECT 1 WHERE 'default' IN system.users", "not system"),
    "information_schema": ("SELECT * FROM information_schema.tables", "not information_schema"),
    "quoted system": ("SELECT * FROM `system`.`one`", "not system"),
    "FORMAT": ("SELECT 1 FORMAT JSON", "FORMAT"),
    "INSERT": ("INSERT INTO shellspan.otel_traces (TraceId) VALUES ('x')", "not InsertQuery"),
    "DROP": ("DROP TABLE shellspan.otel_traces", "not DropQuery"),
    "a name with a line break": ("SELECT 1 AS `a\nb` FROM shellspan.otel_traces", "could not be checked"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_a_message_and_the_writer_unharmed(sink, name):
    statement, message = REFUSED[name]
    status, body = sql(sink, statement)
    assert status == 400 and message in body["error"], body
    assert_still_writing(sink)


def test_into_outfile_writes_nothing(sink, tmp_path):
    target = tmp_path / "written-by-sql"
    status, body = sql(sink, f"SELECT 'x' INTO OUTFILE '{target}'")
    assert status == 400 and "INTO OUTFILE is not allowed" in body["error"], body
    assert not target.exists()
    assert_still_writing(sink)


def test_url_at_the_sink_itself_is_refused_at_once(sink):
    started = time.monotonic()
    status, body = sql(sink, f"SELECT * FROM url('{sink.api_url}/api/sessions', 'JSONAsString')")
    assert status == 400 and "table function url" in body["error"]
    assert time.monotonic() - started < 10
    assert_still_writing(sink)


def test_what_analysts_need_still_runs(sink):
    assert_still_writing(sink)
    for statement in (
        "SELECT count() FROM shellspan.otel_traces FINAL",
        "WITH s AS (SELECT session_id FROM shell_sessions GROUP BY session_id) SELECT count() FROM s",
        "SELECT number FROM numbers(3)",
        "EXPLAIN SELECT count() FROM shellspan.shell_commands",
        "DESCRIBE TABLE shellspan.otel_traces",
    ):
        status, body = sql(sink, statement)
        assert status == 200 and body["rows"], (statement, body)


@pytest.mark.slow
@pytest.mark.parametrize("statement,message", [
    ("SELECT count() FROM numbers(1000000000000)", "longer than 4 s"),
    ("SELECT number FROM numbers(5000)", "larger than 1000 rows"),
    ("SELECT repeat(toString(number), 10000) FROM numbers(500)", "larger than 1000 rows or 1048576 bytes"),
    ("SELECT length(groupArray(number)) FROM numbers(200000000)", "more than 209715200 bytes"),
])
def test_limits_are_enforced_by_clickhouse(sink, statement, message):
    started = time.monotonic()
    status, body = sql(sink, statement)
    assert status == 400 and message in body["error"], body
    assert time.monotonic() - started < 60
    assert_still_writing(sink)


@pytest.mark.slow
def test_a_slow_statement_holds_up_neither_inserts_nor_the_api(sink):
    result: dict = {}
    slow = threading.Thread(target=lambda: result.update(
        answer=sql(sink, "SELECT count() FROM numbers(1000000000000)")))
    slow.start()
    try:
        sink.wait_for(lambda: slow.is_alive())
        assert_still_writing(sink)
        assert slow.is_alive(), "the session was stored only after the statement ended"
    finally:
        slow.join(60)
    assert result["answer"][0] == 400 and "longer than" in result["answer"][1]["error"]


def test_the_cli_refuses_with_the_same_message(sink):
    import subprocess

    from shellspan_testing.sinkproc import SINK_BIN

    done = subprocess.run([str(SINK_BIN), "sql", "--api", sink.api_url,
                           "SELECT * FROM file('/etc/passwd', 'LineAsString')"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "function file is not allowed" in done.stderr


def test_the_readers_session_never_reaches_the_writers(tmp_path: Path):
    """Below the checks: a SET run on the door's own chDB connection (here by hand, bypassing
    them) stays in that connection, which cannot even lift its own readonly."""
    dsn = f"chdb://{tmp_path / 'store'}"
    writer = Store(dsn)
    writer.migrate()
    gate = SqlGate(dsn, SchemaOptions(), SqlLimits(max_seconds=5))
    client = gate.store._connect()
    with pytest.raises(Exception, match="readonly"):
        client.command("SET max_threads = 1")
    with pytest.raises(Exception, match="readonly"):
        client.command("SET readonly = 0")
    settings = "SELECT getSetting('readonly'), getSetting('max_execution_time')"
    assert gate.store.query(settings).rows == [(1, 5.0)]
    assert writer.query(settings).rows == [(0, 0.0)]
    writer.command("INSERT INTO shellspan.shellspan_migrations (version, name) VALUES (99, 'x')")
    gate.close()
    writer.close()
