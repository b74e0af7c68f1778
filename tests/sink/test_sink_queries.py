"""Session queries through the API and the CLI, over a store filled with known sessions."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import urllib.error
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess

HOUR_NS = 3600 * 10**9
NOW = time.time_ns()

SPECS = [
    SessionSpec(user="alice", host="web-1", shell_type="bash", duration_s=100,
                start_ns=NOW - 30 * HOUR_NS,
                commands=[Command("ls -l"), Command("git status"), Command("false", exit_code=1)]),
    SessionSpec(user="alice", host="db-1", shell_type="zsh", duration_s=300,
                start_ns=NOW - 2 * HOUR_NS, commands=[Command("psql -c 'select 1'")]),
    SessionSpec(user="bob", host="db-1", shell_type="python", component="billing-admin",
                duration_s=50, start_ns=NOW - 1 * HOUR_NS,
                commands=[Command("orders.refund(42)", exit_code=1), Command("ls")]),
    SessionSpec(user="carol", host="web-1", shell_type="bash", ended=False, start_ns=NOW - 10**9,
                commands=[Command("tail -f /var/log/syslog", duration_s=0.5)]),
]


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("queries"), extra_args=["--abandon-after", "3600"]).start()
    spans = [span for spec in SPECS for span in session_spans(spec)]
    assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    proc.wait_for(lambda: len(proc.sessions()) == len(SPECS))
    yield proc
    proc.stop()


def ids(sessions: list[dict]) -> set[str]:
    return {s["session_id"] for s in sessions}


def by(*indexes: int) -> set[str]:
    return {SPECS[i].session_id for i in indexes}


@pytest.mark.parametrize("filters,expected", [
    ({}, (0, 1, 2, 3)),
    ({"user": "alice"}, (0, 1)),
    ({"host": "db-1"}, (1, 2)),
    ({"shell_type": "bash"}, (0, 3)),
    ({"component": "billing-admin"}, (2,)),
    ({"state": "active"}, (3,)),
    ({"state": "ended"}, (0, 1, 2)),
    ({"state": "abandoned"}, ()),
    ({"since": "3h"}, (1, 2, 3)),
    ({"until": "3h"}, (0,)),
    ({"user": "alice", "host": "db-1"}, (1,)),
    ({"since": str((NOW - 90 * 60 * 10**9) / 1e9)}, (2, 3)),
])
def test_filters(sink, filters, expected):
    assert ids(sink.sessions(**filters)) == by(*expected)


def test_list_is_newest_first_limited_and_paged(sink):
    page = sink.get("/api/sessions", limit=2)
    assert [s["session_id"] for s in page["sessions"]] == [SPECS[3].session_id, SPECS[2].session_id]
    rest = sink.get("/api/sessions", limit=2, cursor=page["next_cursor"])
    assert [s["session_id"] for s in rest["sessions"]] == [SPECS[1].session_id, SPECS[0].session_id]
    assert rest["next_cursor"] is None


def test_session_fields(sink):
    s = next(x for x in sink.sessions() if x["session_id"] == SPECS[0].session_id)
    assert (s["state"], s["duration_s"], s["command_count"], s["failed_count"]) == ("ended", 100.0, 3, 1)
    assert s["start_time"].startswith(time.strftime("%Y-", time.gmtime(SPECS[0].start_ns / 1e9)))
    live = next(x for x in sink.sessions() if x["session_id"] == SPECS[3].session_id)
    assert live["end_time"] is None and live["state"] == "active"
    assert 0.4 < live["duration_s"] < 2  # first to last activity while open


def test_show_lists_commands_in_order_with_durations_and_exit_codes(sink):
    found = sink.session(SPECS[0].session_id)
    cmds = found["commands"]
    assert [(c["seq"], c["command"], c["exit_code"], c["status"]) for c in cmds] == [
        (1, "ls -l", 0, "Unset"), (2, "git status", 0, "Unset"), (3, "false", 1, "Error")]
    assert all(c["duration_ms"] == 10.0 for c in cmds)
    assert found["session"]["attributes"]["shell.exit.reason"] == "exit"


def test_stats(sink):
    stats = sink.get("/api/stats")
    totals = stats["totals"]
    assert (totals["sessions"], totals["active"], totals["ended"], totals["commands"],
            totals["failed_commands"]) == (4, 1, 3, 7, 2)
    users = {row["key"]: row for row in stats["by_user"]}
    assert users["alice"]["sessions"] == 2 and users["alice"]["failure_rate"] == 0.25
    assert users["bob"]["failure_rate"] == 0.5
    assert {row["key"]: row["sessions"] for row in stats["by_component"]}["billing-admin"] == 1
    top = {row["command_name"]: row for row in stats["top_commands"]}
    assert top["ls"]["runs"] == 2 and top["false"]["failures"] == 1
    assert sum(row["sessions"] for row in stats["busiest_hours"]) == 4
    alice_only = sink.get("/api/stats", user="alice")
    assert alice_only["totals"]["sessions"] == 2
    assert {row["command_name"] for row in alice_only["top_commands"]} == {"ls", "git", "false", "psql"}


INJECTIONS = [
    "' OR '1'='1",
    "alice' --",
    "x'); DROP TABLE shellspan.otel_traces; --",
    "{user:String}",
    "\\' OR 1=1 --",
    "alice\x00",
]


@pytest.mark.parametrize("field", ["user", "host", "component", "shell_type"])
@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_through_string_filters_matches_nothing(sink, field, payload):
    assert sink.sessions(**{field: payload}) == []
    assert sink.get("/api/stats", **{field: payload})["totals"]["sessions"] == 0


@pytest.mark.parametrize("params", [
    {"state": "ended' OR '1'='1"},
    {"limit": "1; DROP TABLE shellspan.otel_traces"},
    {"limit": "0"},
    {"limit": "99999999"},
    {"since": "1' OR '1'='1"},
    {"until": "yesterday; DROP TABLE x"},
    {"order": "session_id; DROP TABLE x"},
    {"cursor": "1-' OR '1'='1"},
    {"since": "1e309"},
    {"until": "-99999999999999999999"},
    {"since": "nan"},
    {"since": "999999999999999999999d"},
    {"cursor": "99999999999999999999-" + "0" * 32},
])
def test_invalid_filters_are_rejected_with_400(sink, params):
    with pytest.raises(urllib.error.HTTPError) as err:
        sink.get("/api/sessions", **params)
    assert err.value.code == 400
    assert "error" in json.loads(err.value.read())


@pytest.mark.parametrize("session_id", ["' OR '1'='1", "0" * 31 + "'", "g" * 32, "x" * 500])
def test_session_id_injection_is_rejected(sink, session_id):
    with pytest.raises(urllib.error.HTTPError) as err:
        sink.get(f"/api/sessions/{urllib.parse.quote(session_id, safe='')}")
    assert err.value.code == 400


def test_store_intact_after_injection_attempts(sink):
    assert len(sink.sessions()) == len(SPECS)
    assert sink.get("/health")["store"]["ok"] is True


def test_unknown_session_is_404(sink):
    with pytest.raises(urllib.error.HTTPError) as err:
        sink.session("0" * 32)
    assert err.value.code == 404


def cli(sink: SinkProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(SINK_BIN), *args, "--api", sink.api_url], capture_output=True,
                          text=True, timeout=60, check=check)


def test_cli_list_table_json_csv_and_export(sink, tmp_path):
    table = cli(sink, "sessions", "list", "--user", "alice").stdout.splitlines()
    assert table[0].split()[:3] == ["SESSION_ID", "STATE", "SHELL_TYPE"]
    assert {line.split()[0] for line in table[1:]} == by(0, 1)

    rows = json.loads(cli(sink, "sessions", "list", "--format", "json", "--host", "db-1").stdout)
    assert ids(rows) == by(1, 2)

    out = tmp_path / "export.csv"
    cli(sink, "sessions", "list", "--format", "csv", "--output", str(out))
    parsed = list(csv.DictReader(io.StringIO(out.read_text())))
    assert ids(parsed) == by(0, 1, 2, 3)
    assert {r["session_id"]: r["command_count"] for r in parsed}[SPECS[0].session_id] == "3"


def test_cli_show_stats_and_sql(sink):
    shown = cli(sink, "sessions", "show", SPECS[2].session_id).stdout
    assert "orders.refund(42)" in shown and "billing-admin" in shown
    assert json.loads(cli(sink, "sessions", "stats", "--format", "json").stdout)["totals"]["sessions"] == 4
    rows = json.loads(cli(sink, "sql", "SELECT uniqExact(TraceId) AS n FROM shellspan.otel_traces",
                          "--format", "json").stdout)
    assert rows == [{"n": 4}]
    refused = cli(sink, "sql", "DROP TABLE shellspan.otel_traces", check=False)
    assert refused.returncode != 0 and "not DropQuery" in refused.stderr
    missing = cli(sink, "sessions", "show", "0" * 32, check=False)
    assert missing.returncode == 1 and "no session" in missing.stderr


def test_cli_explains_when_the_sink_is_not_running():
    result = subprocess.run([str(SINK_BIN), "sessions", "list", "--api", "http://127.0.0.1:9"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "is `shellspan-sink serve` running?" in result.stderr


FILTER_NAMES = ["user", "host", "component", "shell_type", "state", "since", "until", "limit",
                "cursor", "top"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(FILTER_NAMES),
                              st.one_of(st.text(max_size=60), st.integers().map(str),
                                        st.sampled_from(["ended", "24h", "0", "-1", "1e309", "nan", "inf",
                                                         "99999999999999999999", "9" * 30 + "d",
                                                         "1-" + "a" * 32, "9" * 19 + "-" + "a" * 32])),
                              max_size=4),
       path=st.sampled_from(["/api/sessions", "/api/stats"]))
def test_fuzzed_filters_answer_200_or_400_and_never_reach_sql(sink, params, path):
    if path == "/api/sessions":
        params.pop("top", None)
    try:
        body = sink.get(path, **params)
        assert isinstance(body, dict)
    except urllib.error.HTTPError as exc:
        detail = exc.read()
        assert exc.code == 400, (exc.code, params, detail[:300])
        assert json.loads(detail)["error"]


def test_store_intact_after_fuzzing(sink):
    assert len(sink.sessions()) == len(SPECS)
