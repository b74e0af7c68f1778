"""Command search through the real sink: text, regular expressions, filters, keyset pages, the
identity and context of each hit, exactly-once results, and input that must never reach SQL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess, drained
from shellspan_testing.tokens import mint

SECRET = "search-tests-secret-0123456789abcdef"
HOUR_NS = 3600 * 10**9
NOW = time.time_ns()


def token(sub: str, scope: str = "sessions:read") -> str:
    return mint(SECRET, sub, scope)


ALICE = SessionSpec(user="alice", host="web-1", shell_type="bash", start_ns=NOW - 5 * HOUR_NS,
                    commands=[Command("ls -l"),
                              Command("kubectl delete pod web-1", cwd="/srv/app"),
                              Command("echo done", cwd="/srv/app/sub"),
                              Command("false", exit_code=1, cwd="/srv/apple")])
# Claims to be root; its spans come with carol's token, so its verified identity is carol.
CAROL = SessionSpec(user="root", host="db-1", shell_type="zsh", start_ns=NOW - 4 * HOUR_NS,
                    commands=[Command("psql -c 'DROP TABLE users'", exit_code=1),
                              Command("Kubectl GET pods"),
                              Command("rm -rf /tmp/x_y%z"),
                              Command("echo \"x' OR '1'='1\"")])
BOB = SessionSpec(user="bob", host="web-1", shell_type="python", start_ns=NOW - 72 * HOUR_NS,
                  commands=[Command("orders.refund(42)", exit_code=1),
                            Command("kubectl delete ns old")])
DAVE = SessionSpec(user="dave", host="batch-1", shell_type="bash", start_ns=NOW - 10 * HOUR_NS,
                   commands=[Command(f"step {i:03d}") for i in range(1, 121)])
SPECS = [ALICE, CAROL, BOB, DAVE]


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("search"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    proc.read_token = token("auditor")
    proc.start()
    proc.sent = {}  # session id -> the request that carried it, to deliver again
    for spec in SPECS:
        headers = {"Authorization": f"Bearer {token('carol', '')}"} if spec is CAROL else None
        body = request_for(session_spans(spec)).SerializeToString()
        assert post(proc.otlp_http_endpoint, body, headers=headers).status == 200
        proc.sent[spec.session_id] = body
    total = sum(len(s.commands) for s in SPECS)
    proc.wait_for(lambda: search(proc, limit=1000)["count"] == total)
    yield proc
    proc.stop()


def search(sink: SinkProcess, **params) -> dict:
    status, body = sink.call("/api/commands", params=params)
    assert status == 200, body
    return body


def texts(sink: SinkProcess, **params) -> list[str]:
    return [hit["command"] for hit in search(sink, **params)["commands"]]


def test_substring_is_case_insensitive_and_newest_first(sink):
    assert texts(sink, q="KUBECTL") == ["Kubectl GET pods", "kubectl delete pod web-1",
                                        "kubectl delete ns old"]
    assert texts(sink, q="delete pod") == ["kubectl delete pod web-1"]
    assert texts(sink, q="no such text anywhere") == []


@pytest.mark.parametrize("q,expected", [
    ("x_y%z", ["rm -rf /tmp/x_y%z"]),
    ("%", ["rm -rf /tmp/x_y%z"]),
    ("_", ["rm -rf /tmp/x_y%z"]),
    ("\\", []),
    ("x' OR '1'='1", ["echo \"x' OR '1'='1\""]),
    ("'", ["echo \"x' OR '1'='1\"", "psql -c 'DROP TABLE users'"]),
])
def test_like_wildcards_and_quotes_are_literal(sink, q, expected):
    assert texts(sink, q=q) == expected


def test_regular_expressions(sink):
    assert texts(sink, q=r"^kubectl\s+delete", regex=1) == ["kubectl delete pod web-1",
                                                            "kubectl delete ns old"]
    assert texts(sink, q=r"(?i)^kubectl", regex=1) == ["Kubectl GET pods", "kubectl delete pod web-1",
                                                       "kubectl delete ns old"]
    assert texts(sink, q=r"refund\(\d+\)$", regex=1) == ["orders.refund(42)"]


@pytest.mark.parametrize("pattern", ["(", "[a-", "a{2,1}", "\\", "(?P<x", "*"])
def test_bad_regular_expressions_are_400(sink, pattern):
    status, body = sink.call("/api/commands", params={"q": pattern, "regex": 1})
    assert status == 400 and body["error"].startswith("invalid regular expression"), body


def test_each_hit_carries_its_session_identity_and_context(sink):
    (hit,) = search(sink, q="delete pod")["commands"]
    assert hit["session_id"] == ALICE.session_id and hit["seq"] == 2
    assert (hit["user"], hit["verified"], hit["host_name"], hit["shell_type"]) == \
        ("alice", False, "web-1", "bash")
    assert (hit["cwd"], hit["exit_code"], hit["duration_ms"]) == ("/srv/app", 0, 10.0)
    assert hit["before"] == {"seq": 1, "command": "ls -l"}
    assert hit["after"] == {"seq": 3, "command": "echo done"}
    assert hit["start_time"].startswith(time.strftime("%Y-", time.gmtime(ALICE.start_ns / 1e9)))
    (verified,) = search(sink, q="GET pods")["commands"]
    assert (verified["user"], verified["verified"], verified["user_name"],
            verified["enduser_id"]) == ("carol", True, "root", "carol")
    (first,) = search(sink, q="ls -l")["commands"]
    assert first["before"] is None and first["after"]["command"] == "kubectl delete pod web-1"


@pytest.mark.parametrize("filters,expected", [
    ({"user": "alice"}, {"ls -l", "kubectl delete pod web-1", "echo done", "false"}),
    ({"user": "carol", "q": "pods"}, {"Kubectl GET pods"}),
    ({"user": "root"}, set()),  # claimed, but the session's verified identity is carol
    ({"host": "db-1", "q": "drop"}, {"psql -c 'DROP TABLE users'"}),
    ({"shell_type": "python"}, {"orders.refund(42)", "kubectl delete ns old"}),
    ({"cwd": "/srv/app"}, {"kubectl delete pod web-1", "echo done"}),
    ({"cwd": "/srv/app/"}, {"kubectl delete pod web-1", "echo done"}),
    ({"exit": "failed"}, {"false", "psql -c 'DROP TABLE users'", "orders.refund(42)"}),
    ({"exit": "1", "user": "alice"}, {"false"}),
    ({"since": "48h", "q": "kubectl"}, {"Kubectl GET pods", "kubectl delete pod web-1"}),
    ({"until": "48h"}, {"orders.refund(42)", "kubectl delete ns old"}),
    ({"session": BOB.session_id.upper()}, {"orders.refund(42)", "kubectl delete ns old"}),
    ({"q": "step", "host": "web-1"}, set()),
])
def test_filters(sink, filters, expected):
    assert set(texts(sink, limit=1000, **filters)) == expected


@pytest.mark.parametrize("narrowed", [{}, {"user": "dave"}], ids=["final", "by-session"])
def test_keyset_pages_cover_everything_once_in_order(sink, narrowed):
    seen, cursor, pages = [], None, 0
    while True:
        page = search(sink, q="step", limit=50, cursor=cursor, **narrowed)
        seen += [hit["command"] for hit in page["commands"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == [f"step {i:03d}" for i in range(120, 0, -1)]


def test_a_redelivered_span_is_found_once(sink):
    for _ in range(2):  # the same request again: the same spans, ids and all
        assert post(sink.otlp_http_endpoint, sink.sent[ALICE.session_id]).status == 200
    drained(sink)
    expected = ["false", "echo done", "kubectl delete pod web-1", "ls -l"]
    assert texts(sink, limit=1000, session=ALICE.session_id) == expected
    assert texts(sink, limit=1000, user="alice") == expected  # the plan without FINAL too
    assert texts(sink, limit=2, user="alice") == expected[:2]
    (hit,) = search(sink, q="delete pod")["commands"]
    assert hit["before"] == {"seq": 1, "command": "ls -l"}


INJECTIONS = ["' OR '1'='1", "alice' --", "x'); DROP TABLE shellspan.shell_command_search; --",
              "{user:String}", "\\' OR 1=1 --", "alice\x00"]


@pytest.mark.parametrize("field", ["user", "host", "shell_type", "cwd", "tag"])
@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_through_filters_matches_nothing(sink, field, payload):
    status, body = sink.call("/api/commands", params={field: payload})
    assert (status, body.get("count", 0)) in ((200, 0), (400, 0)), body


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_through_the_text_is_a_literal(sink, payload):
    status, body = sink.call("/api/commands", params={"q": payload})
    assert status in (200, 400)
    if status == 200:
        assert all(payload.lower() in hit["command"].lower() for hit in body["commands"])
    status, body = sink.call("/api/commands", params={"q": payload, "regex": 1})
    assert status in (200, 400), body


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "1001"}, {"limit": "1; DROP TABLE x"}, {"regex": "2"},
    {"exit": "1; DROP TABLE x"}, {"exit": "99999999999999999999"}, {"session": "abc"},
    {"session": "' OR '1'='1"}, {"since": "nan"}, {"until": "1e309"}, {"cursor": "1-x-y"},
    {"cursor": "99999999999999999999-" + "a" * 32 + "-" + "b" * 16}, {"order": "x"},
    {"q": "x" * 1025}, {"cwd": "a" * 5000},
])
def test_invalid_parameters_are_400(sink, params):
    status, body = sink.call("/api/commands", params=params)
    assert status == 400 and body["error"], (params, body)


SEARCH_PARAMS = ["q", "regex", "user", "host", "shell_type", "cwd", "exit", "since", "until",
                 "session", "tag", "limit", "cursor"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(
    st.sampled_from(SEARCH_PARAMS),
    st.one_of(st.text(max_size=60), st.integers().map(str),
              st.sampled_from(["1", "0", "failed", "24h", "nan", "inf", "(", "[a-", "\\",
                               "%", "_", "a" * 32, "1-" + "a" * 32 + "-" + "b" * 16])),
    max_size=5))
def test_fuzzed_parameters_answer_200_or_400(sink, params):
    status, body = sink.call("/api/commands", params=params)
    assert status in (200, 400), (status, params, str(body)[:300])
    assert isinstance(body, dict) and ("commands" in body if status == 200 else body["error"])


def test_store_intact_after_injection_and_fuzzing(sink):
    assert search(sink, limit=1000)["count"] == sum(len(s.commands) for s in SPECS)
    assert sink.get("/health")["store"]["ok"] is True


def test_search_needs_the_read_scope(sink):
    assert sink.call("/api/commands", token=token("x", "sessions:annotate"))[0] == 401
    assert sink.call("/api/commands", token="not-a-token")[0] == 401


def cli(sink: SinkProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(SINK_BIN), *args, "--api", sink.api_url, "--token", sink.read_token],
                          capture_output=True, text=True, timeout=60, check=check)


def test_cli_commands_search_table_json_csv(sink):
    text = cli(sink, "commands", "search", "delete pod").stdout
    assert "  > " in text and "kubectl delete pod web-1" in text
    assert "ls -l" in text and "echo done" in text and ALICE.session_id in text
    page = json.loads(cli(sink, "commands", "search", r"^kubectl\s", "--regex", "--json").stdout)
    assert [h["command"] for h in page["commands"]] == ["kubectl delete pod web-1",
                                                        "kubectl delete ns old"]
    rows = list(csv.DictReader(io.StringIO(cli(sink, "commands", "search", "--user", "carol",
                                               "--exit", "failed", "--csv").stdout)))
    assert [(r["command"], r["user"], r["after_command"]) for r in rows] == [
        ("psql -c 'DROP TABLE users'", "carol", "Kubectl GET pods")]
    paged = cli(sink, "commands", "search", "step", "--limit", "5")
    assert "more: --cursor " in paged.stderr
    cursor = paged.stderr.split("--cursor ", 1)[1].split()[0]
    nxt = json.loads(cli(sink, "commands", "search", "step", "--limit", "5", "--cursor", cursor,
                         "--json").stdout)
    assert [h["command"] for h in nxt["commands"]] == [f"step {i:03d}" for i in range(115, 110, -1)]
    bad = cli(sink, "commands", "search", "(", "--regex", check=False)
    assert bad.returncode != 0 and "invalid regular expression" in bad.stderr
