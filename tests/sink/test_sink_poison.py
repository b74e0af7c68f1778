"""No request can stop storage: spans on many days are spread over bounded inserts, every span
keeps its time of receipt, and what the store refuses for good is quarantined (kept, counted,
reported) instead of blocking the rest, across restarts and kill -9. (The span-time window is in
test_sink_limits.)"""

from __future__ import annotations

import json
import time

from shellspan import semconv
from shellspan_sink.rowbinary import NS_PER_DAY, encode_request
from shellspan_sink.wal_records import LEGACY_HEADER, LEGACY_MAGIC, Record, encode_record
from shellspan_testing.otlp_builders import (
    Command,
    SessionSpec,
    kv,
    post,
    request_for,
    session_spans,
)
from shellspan_testing.sinkproc import SinkProcess


def spread_over_days(spec: SessionSpec, now: int) -> list:
    """The session's spans, its commands moved to one day each, going back from today."""
    spans = session_spans(spec)
    commands = [s for s in spans if s.name == semconv.SPAN_COMMAND]
    for day, span in enumerate(commands):
        span.start_time_unix_nano = now - day * NS_PER_DAY - 60 * 10**9
        span.end_time_unix_nano = span.start_time_unix_nano + 10**6
    return spans


def stored_days(sink: SinkProcess, session_id: str) -> tuple[int, int]:
    row = sink.sql("SELECT count(), uniqExact(toDate(Timestamp)) FROM shellspan.otel_traces FINAL "
                   f"WHERE TraceId = '{session_id}'")["rows"][0]
    return int(row[0]), int(row[1])


def wait_stored(sink: SinkProcess, user: str, **expect) -> dict:
    def found():
        sessions = sink.sessions(user=user)
        if sessions and all(sessions[0].get(k) == v for k, v in expect.items()):
            return sessions[0]
        return None
    return sink.wait_for(found)


def test_150_days_in_one_request_then_a_normal_session_are_stored(shared_sink):
    sink = shared_sink
    now = time.time_ns()
    days = SessionSpec(user="days", commands=[Command(f"day {i}") for i in range(150)])
    reply = post(sink.otlp_http_endpoint, request_for(spread_over_days(days, now)).SerializeToString())
    assert reply.status == 200 and not reply.export_response().HasField("partial_success")
    normal = SessionSpec(user="after-the-days", commands=[Command("ls"), Command("id")])
    assert post(sink.otlp_http_endpoint,
                request_for(session_spans(normal)).SerializeToString()).status == 200

    assert wait_stored(sink, "after-the-days", command_count=2)["state"] == "ended"
    shown = sink.session(normal.session_id)
    assert [c["command"] for c in shown["commands"]] == ["ls", "id"]
    # Every one of the 150 days is stored: 152 spans (start and root spans share today).
    sink.wait_for(lambda: stored_days(sink, days.session_id) == (152, 150))
    status, health = sink.health()
    assert (status, health["status"], health["problems"]) == (200, "ok", [])
    assert health["wal"]["quarantine"]["records"] == 0 and health["wal"]["failed_inserts"] == 0


def test_every_span_carries_the_time_the_sink_received_it(shared_sink):
    sink = shared_sink
    spec = SessionSpec(user="received", commands=[Command("ls")])
    spans = session_spans(spec)
    for span in spans:  # a client cannot choose it
        span.attributes.append(kv(semconv.RECEIVED_TIME, "42"))
    before = time.time_ns()
    assert post(sink.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    after = time.time_ns()
    wait_stored(sink, "received")
    rows = sink.sql(f"SELECT SpanAttributes['{semconv.RECEIVED_TIME}'] FROM shellspan.otel_traces "
                    f"WHERE TraceId = '{spec.session_id}'")["rows"]
    assert len(rows) == len(spans)
    assert {before <= int(r[0]) <= after for r in rows} == {True}
    assert len({r[0] for r in rows}) == 1  # one request, one time


def legacy_record(record: Record) -> bytes:
    """A record as sinks wrote them before records carried their day."""
    import zlib

    return LEGACY_HEADER.pack(LEGACY_MAGIC, len(record.data), record.rows,
                              zlib.crc32(record.data)) + record.data


def encoded(spans, now: int) -> list[Record]:
    chunks, _, _, _, _ = encode_request(request_for(spans).SerializeToString(),
                                     {semconv.RECEIVED_TIME: str(now)}, 128, 16384)
    return [Record(day, data, rows) for day, data, rows in chunks]


def test_poison_is_quarantined_and_survives_kill_9(tmp_path):
    """A WAL segment left by an older sink holds a request whose rows span 150 days in one record
    (ClickHouse refuses it: too many partitions for one insert) and a record of garbage among
    good records: the good ones are stored, the two bad ones quarantined and reported, through a
    kill -9 and a restart, and new sessions are stored all along."""
    now = time.time_ns()
    before = SessionSpec(user="before-poison", commands=[Command("ls")])
    many_days = SessionSpec(user="many-days", commands=[Command(f"d{i}") for i in range(150)])
    same_day = SessionSpec(user="beside-garbage", commands=[Command("pwd")])
    [good_legacy] = encoded(session_spans(before), now)
    poison = Record(None, b"".join(r.data for r in encoded(spread_over_days(many_days, now), now)),
                    len(session_spans(many_days)))
    [good] = encoded(session_spans(same_day), now)
    garbage = Record(good.day, b"\xff" * 64, 3)  # a CRC-valid record ClickHouse cannot read

    sink = SinkProcess(tmp_path / "sink")
    wal = tmp_path / "sink" / "store-wal"  # the sink's default WAL directory
    wal.mkdir(parents=True)
    (wal / "000000000007.sealed").write_bytes(
        legacy_record(good_legacy) + legacy_record(poison) + encode_record(garbage)
        + encode_record(good))

    def check_degraded(proc: SinkProcess) -> dict:
        status, health = proc.health()
        assert (status, health["status"]) == (503, "degraded"), health
        quarantine = health["wal"]["quarantine"]
        assert (quarantine["records"], quarantine["spans"]) == (2, poison.rows + garbage.rows)
        assert {e["record"] for e in quarantine["entries"]} == {1, 2}
        assert any("TOO_MANY_PARTS" in e["error"] or "partitions" in e["error"]
                   for e in quarantine["entries"])
        assert any("quarantined" in p for p in health["problems"])
        assert health["store"]["ok"] and health["wal"]["pending_bytes"] == 0
        return health

    sink.launch()
    try:
        sink.wait_ready(status=("degraded",))
        sink.wait_for(lambda: sink.health()[1]["wal"]["quarantine"]["records"] == 2)
        wait_stored(sink, "before-poison", command_count=1)
        wait_stored(sink, "beside-garbage", command_count=1)
        assert sink.sessions(user="many-days") == []
        check_degraded(sink)
        entries = sorted(p.name for p in (wal / "quarantine").iterdir())
        assert entries == ["000000000007-000001.json", "000000000007-000001.rec",
                           "000000000007-000002.json", "000000000007-000002.rec"]
        meta = json.loads((wal / "quarantine" / "000000000007-000002.json").read_text())
        assert meta["spans"] == 3 and meta["segment"] == "000000000007"
        assert not list(wal.glob("*.sealed"))
        during = SessionSpec(user="during-quarantine", commands=[Command("id")])
        assert post(sink.otlp_http_endpoint,
                    request_for(session_spans(during)).SerializeToString()).status == 200
        wait_stored(sink, "during-quarantine", command_count=1)
    finally:
        sink.kill()
    assert sink.proc.returncode == -9

    restarted = SinkProcess(tmp_path / "sink")
    restarted.launch()
    try:
        restarted.wait_ready(status=("degraded",))
        check_degraded(restarted)
        after = SessionSpec(user="after-kill", commands=[Command("whoami")])
        assert post(restarted.otlp_http_endpoint,
                    request_for(session_spans(after)).SerializeToString()).status == 200
        wait_stored(restarted, "after-kill", command_count=1)
        assert {s["user_name"] for s in restarted.sessions()} == {
            "before-poison", "beside-garbage", "during-quarantine", "after-kill"}
        check_degraded(restarted)  # still the truth
    finally:
        restarted.stop()

