"""The stats from the rollups against the exact computation (``/api/stats?exact=1``) on a small
store, through a real sink: every filter, re-delivered spans, open sessions, a session whose
start moves to an earlier hour; and the sessions list, found through the index, against its
definition in SQL."""

from __future__ import annotations

import json
import time

import pytest

from shellspan import semconv
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, drained

HOUR_NS = 3600 * 10**9
NOW = time.time_ns() // HOUR_NS * HOUR_NS + 30 * 60 * 10**9  # half past the current hour
USERS, HOSTS, SHELLS = ("ann", "ben", "cid"), ("web-1", "db-1"), ("bash", "zsh", "python")


def spec(i: int, **overrides) -> SessionSpec:
    fields = dict(user=USERS[i % 3], host=HOSTS[i % 2], shell_type=SHELLS[i % 3],
                  component="billing" if i % 5 == 0 else "",
                  start_ns=NOW - (i * 7 + 1) * HOUR_NS // 3 - i * 10**9,
                  duration_s=30 + i * 17, ended=i % 4 != 0,
                  commands=[Command(c, exit_code=int(c == "false"), duration_s=0.01 * (1 + j))
                            for j, c in enumerate(["ls", "git status", "false", "make"][: i % 5])])
    fields.update(overrides)
    return SessionSpec(**fields)


SPECS = [spec(i) for i in range(40)]
SPANS = [session_spans(sp) for sp in SPECS]  # made once: sending them again re-delivers them


def send(sink: SinkProcess, spans: list) -> None:
    reply = post(sink.otlp_http_endpoint, request_for(spans).SerializeToString())
    assert reply.status == 200, reply.body


def caught_up(sink: SinkProcess) -> None:
    """Wait until the rollups have had a round that began after everything sent was stored."""
    drained(sink)
    stored = sink.sql("SELECT toUnixTimestamp64Milli(max(updated_at)) "
                      "FROM shellspan.shell_session_updates")["rows"][0][0]
    sink.wait_for(lambda: (sink.get("/health")["rollups"]["watermark_ms"] or 0) >= stored,
                  timeout=60)


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("rollups"),
                       extra_args=["--abandon-after", "7200", "--rollup-interval", "0.2"]).start()
    send(proc, [s for spans in SPANS for s in spans])
    caught_up(proc)
    yield proc
    proc.stop()


def same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN == NaN here


FILTERS = [
    {}, {"user": "ann"}, {"host": "db-1"}, {"shell_type": "zsh"}, {"component": "billing"},
    {"state": "ended"}, {"state": "active"}, {"state": "abandoned"},
    {"since": "5h"}, {"since": "30h"}, {"until": "10h"}, {"since": "40h", "until": "20h"},
    {"since": str((NOW - 9 * HOUR_NS) / 1e9)},  # on an hour boundary
    {"user": "ben", "since": "26h"}, {"host": "web-1", "state": "ended", "until": "3h"},
    {"user": "nobody"}, {"top": "2"},
]


def agree(sink: SinkProcess, filters: dict) -> dict:
    rolled = sink.get("/api/stats", **filters)
    exact = sink.get("/api/stats", exact=1, **filters)
    assert same(rolled, exact), (filters, rolled, exact)
    return rolled


@pytest.mark.slow
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: json.dumps(f))
def test_rollups_answer_what_the_exact_computation_does(sink, filters):
    agree(sink, filters)


def test_the_rollups_are_in_use(sink):
    rollups = sink.get("/health")["rollups"]
    assert rollups["watermark_ms"] and rollups["hours_recomputed"] >= 10, rollups
    totals = agree(sink, {})["totals"]
    assert (totals["sessions"], totals["ended"]) == (40, 30)
    assert totals["commands"] == sum(len(s.commands) for s in SPECS)


@pytest.mark.slow
def test_re_delivered_spans_count_once(sink):
    before = agree(sink, {})
    again = [s for spans in SPANS[10:20] for s in spans]
    send(sink, again)  # the same spans (trace and span ids) twice more,
    send(sink, again)
    send(sink, [s for s in again if s.name == semconv.SPAN_COMMAND])  # and a part once more
    drained(sink)
    assert same(agree(sink, {}), before)  # stale rollups: what changed is computed exactly
    caught_up(sink)
    for filters in FILTERS:
        agree(sink, filters)
    assert same(agree(sink, {}), before)


def test_open_sessions_that_go_on_and_end(sink):
    live = spec(100, user="dora", ended=False, start_ns=time.time_ns() - 90 * 10**9,
                commands=[Command("top")])
    send(sink, session_spans(live))
    drained(sink)
    stats = agree(sink, {})
    assert stats["totals"]["active"] >= 1
    more = spec(100, user="dora", ended=True, trace_id=live.trace_id, start_ns=live.start_ns,
                duration_s=120, commands=[Command("top"), Command("exit 1", exit_code=1)])
    send(sink, [s for s in session_spans(more) if s.name != semconv.SPAN_SESSION_START])
    drained(sink)
    agree(sink, {"user": "dora"})
    caught_up(sink)
    for filters in ({}, {"user": "dora"}, {"state": "ended"}, {"since": "1h"}):
        agree(sink, filters)


def test_a_session_whose_start_moves_to_an_earlier_hour(sink):
    late = spec(200, user="eve", start_ns=NOW - 50 * HOUR_NS, duration_s=60,
                commands=[Command("ls")])
    send(sink, session_spans(late))
    caught_up(sink)
    agree(sink, {"user": "eve"})
    # A command span from three hours before its session's start arrives: the session now
    # starts in another hour, which must no longer count it where it was.
    early = SessionSpec(user="eve", trace_id=late.trace_id, start_ns=late.start_ns - 3 * HOUR_NS,
                        commands=[Command("whoami")], ended=False)
    send(sink, [s for s in session_spans(early) if s.name == semconv.SPAN_COMMAND])
    drained(sink)
    agree(sink, {})
    caught_up(sink)
    for filters in ({}, {"user": "eve"}, {"since": "52h"}, {"until": "52h"}):
        agree(sink, filters)


def sql_ids(sink: SinkProcess, where: str = "") -> list[str]:
    """The sessions list's order, by its definition over shell_sessions."""
    rows = sink.sql(f"SELECT session_id FROM shellspan.shell_sessions GROUP BY session_id "
                    f"{where} ORDER BY min(start_time) DESC, session_id")["rows"]
    return [r[0] for r in rows]


@pytest.mark.parametrize("filters,having", [
    ({}, ""), ({"user": "ben"}, "HAVING max(user_name) = 'ben'"),
    ({"state": "ended"}, "HAVING max(ended) = 1"),
])
def test_the_list_pages_through_every_session_in_order(sink, filters, having):
    expected = sql_ids(sink, having)
    seen, cursor = [], None
    while True:
        page = sink.get("/api/sessions", limit=7, cursor=cursor, **filters)
        seen += [s["session_id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected


def test_sessions_with_late_spans_keep_their_place_in_the_list(sink):
    """Long sessions whose later spans are newer than newer sessions' starts (their index
    rows come late) are listed by their start, not by their latest rows."""
    old = [spec(300 + i, user="fay", start_ns=NOW - (60 + i) * HOUR_NS, ended=False,
                commands=[]) for i in range(5)]
    send(sink, [s for sp in old for s in session_spans(sp)])
    drained(sink)
    later = [SessionSpec(user="fay", trace_id=sp.trace_id, start_ns=time.time_ns(),
                         commands=[Command("date")], ended=False) for sp in old]
    send(sink, [s for sp in later for s in session_spans(sp) if s.name == semconv.SPAN_COMMAND])
    drained(sink)
    newest = sink.get("/api/sessions", limit=5)["sessions"]
    assert not {s["session_id"] for s in newest} & {sp.session_id for sp in old}
    assert [s["session_id"] for s in sink.get("/api/sessions", user="fay")["sessions"]] == \
        [sp.session_id for sp in old]
    agree(sink, {"user": "fay"})
