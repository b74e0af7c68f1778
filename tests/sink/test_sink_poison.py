"""No request can stop storage, for spans and terminal recordings (log records) alike: rows on
many days are spread over bounded inserts, every span and log record keeps its time of receipt,
and what the store refuses for good is quarantined (kept, counted, reported) instead of blocking
the rest, across restarts and kill -9. (The time window is in test_sink_limits.)"""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from shellspan import semconv
from shellspan_sink.logs_rowbinary import encode_request as encode_logs
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
from shellspan_testing.recordings import (
    RecordedCommand,
    logs_request,
    post_logs,
    record,
    recorded_session,
    store_recording,
    stored_records,
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


def stored_days(sink: SinkProcess, session_id: str, table: str = "otel_traces") -> tuple[int, int]:
    """(rows, days) of a session in a raw table, deduplicated."""
    row = sink.sql(f"SELECT count(), uniqExact(toDate(Timestamp)) FROM shellspan.{table} FINAL "
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


def test_150_days_of_recording_in_one_request_then_a_normal_recording_are_stored(shared_sink):
    sink = shared_sink
    now = time.time_ns()
    days = recorded_session([RecordedCommand("tail -f app.log", b"")], user="rec-days")
    session, root = days.spec.trace_id, days.root_span_id
    days.records += [record(len(days.records) + 1 + day, session, root,
                            now - day * NS_PER_DAY - 60 * 10**9, "o", f"day {day}\r\n")
                     for day in range(150)]
    assert post(sink.otlp_http_endpoint, request_for(days.spans).SerializeToString()).status == 200
    reply = post_logs(sink.otlp_http_endpoint, logs_request(days.records).SerializeToString())
    assert reply.status == 200
    assert not ExportLogsServiceResponse.FromString(reply.body).HasField("partial_success")
    normal = recorded_session([RecordedCommand("echo after", b"after\r\n")],
                              user="rec-after-the-days")
    store_recording(sink, normal)
    assert sink.fetch(f"/api/sessions/{normal.session_id}/recording")[0] == 200

    # Every one of the 150 days is stored, and every record once.
    sink.wait_for(lambda: stored_days(sink, days.session_id, "otel_logs")[1] == 150)
    assert stored_records(sink, days.session_id) == (len(days.records), len(days.records))
    status, health = sink.health()
    assert (status, health["status"], health["problems"]) == (200, "ok", [])
    logs_wal = health["logs"]["wal"]
    assert logs_wal["quarantine"]["records"] == 0 and logs_wal["failed_inserts"] == 0


def received_times(sink: SinkProcess, table: str, attributes: str, session_id: str,
                   rows: int) -> list[int]:
    """The received time of each of a session's `rows` rows in a raw table, once all are stored."""
    query = (f"SELECT {attributes}['{semconv.RECEIVED_TIME}'] FROM shellspan.{table} "
             f"WHERE TraceId = '{session_id}'")
    found = sink.wait_for(lambda: len(stored := sink.sql(query)["rows"]) == rows and stored)
    return [int(r[0]) for r in found]


def test_every_span_and_log_record_carries_the_time_the_sink_received_it(shared_sink):
    sink = shared_sink
    rec = recorded_session([RecordedCommand("ls", b"a b\r\n")], user="received")
    for item in rec.spans + rec.records:  # a client cannot choose it
        item.attributes.append(kv(semconv.RECEIVED_TIME, "42"))
    before = time.time_ns()
    assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString()).status == 200
    between = time.time_ns()
    assert post_logs(sink.otlp_http_endpoint,
                     logs_request(rec.records).SerializeToString()).status == 200
    after = time.time_ns()
    spans = received_times(sink, "otel_traces", "SpanAttributes", rec.session_id, len(rec.spans))
    records = received_times(sink, "otel_logs", "LogAttributes", rec.session_id, len(rec.records))
    # One request, one time.
    assert len(set(spans)) == 1 and before <= spans[0] <= between
    assert len(set(records)) == 1 and between <= records[0] <= after


def legacy_record(record: Record) -> bytes:
    """A record as sinks wrote them before records carried their day."""
    import zlib

    return LEGACY_HEADER.pack(LEGACY_MAGIC, len(record.data), record.rows,
                              zlib.crc32(record.data)) + record.data


def encoded(request, now: int, encode=encode_request) -> list[Record]:
    """WAL records of an export request, as the sink writes them (`encode`: the signal's
    encoder)."""
    chunks = encode(request.SerializeToString(), {semconv.RECEIVED_TIME: str(now)}, 128, 16384)[0]
    return [Record(day, data, rows) for day, data, rows in chunks]


def check_quarantined(proc: SinkProcess, signal: str, records: set[int], rows: int) -> dict:
    """/health of a sink whose `signal` WAL ("traces" or "logs") has quarantined `records` (by
    their place in the segment) holding `rows` rows, and nothing else."""
    status, health = proc.health()
    assert (status, health["status"]) == (503, "degraded"), health
    wals = {"traces": health["wal"], "logs": health["logs"]["wal"]}
    quarantine = wals.pop(signal)["quarantine"]
    assert (quarantine["records"], quarantine["spans"]) == (len(records), rows)
    assert {e["record"] for e in quarantine["entries"]} == records
    assert any("TOO_MANY_PARTS" in e["error"] or "partitions" in e["error"]
               for e in quarantine["entries"])
    [other] = wals.values()
    assert other["quarantine"]["records"] == 0
    unit = {"traces": "spans", "logs": "log records"}[signal]
    assert [p for p in health["problems"] if "quarantined" in p] == [
        f"{len(records)} WAL record(s) ({rows} {unit}) refused by the store are quarantined in "
        f"{quarantine['dir']}"]
    assert health["store"]["ok"]
    assert health["wal"]["pending_bytes"] == 0 and health["logs"]["wal"]["pending_bytes"] == 0
    return health


@pytest.mark.slow
def test_poison_is_quarantined_and_survives_kill_9(tmp_path):
    """A WAL segment left by an older sink holds a request whose rows span 150 days in one record
    (ClickHouse refuses it: too many partitions for one insert) and a record of garbage among
    good records: the good ones are stored, the two bad ones quarantined and reported, through a
    kill -9 and a restart, and new sessions are stored all along."""
    now = time.time_ns()
    before = SessionSpec(user="before-poison", commands=[Command("ls")])
    many_days = SessionSpec(user="many-days", commands=[Command(f"d{i}") for i in range(150)])
    same_day = SessionSpec(user="beside-garbage", commands=[Command("pwd")])
    [good_legacy] = encoded(request_for(session_spans(before)), now)
    poison = Record(None, b"".join(r.data for r in encoded(request_for(spread_over_days(
        many_days, now)), now)), len(session_spans(many_days)))
    [good] = encoded(request_for(session_spans(same_day)), now)
    garbage = Record(good.day, b"\xff" * 64, 3)  # a CRC-valid record ClickHouse cannot read

    sink = SinkProcess(tmp_path / "sink")
    wal = tmp_path / "sink" / "store-wal"  # the sink's default WAL directory
    wal.mkdir(parents=True)
    (wal / "000000000007.sealed").write_bytes(
        legacy_record(good_legacy) + legacy_record(poison) + encode_record(garbage)
        + encode_record(good))

    def check_degraded(proc: SinkProcess) -> dict:
        return check_quarantined(proc, "traces", {1, 2}, poison.rows + garbage.rows)

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



@pytest.mark.slow
def test_poisoned_recording_is_quarantined_and_survives_kill_9(tmp_path):
    """The logs WAL (terminal recordings) isolates poison as the spans' WAL does: a segment left
    by an older sink holds a recording whose records span 150 days in one record and a record of
    garbage among good ones; the good recordings are stored, the two bad records quarantined in
    the logs WAL's own quarantine and reported under `logs` in /health, through a kill -9 and a
    restart, and new recordings are stored all along."""
    now = time.time_ns()
    before = recorded_session([RecordedCommand("ls", b"a\r\n")], user="rec-before-poison")
    many_days = recorded_session([RecordedCommand("tail", b"")], user="rec-many-days")
    many_days.records += [record(len(many_days.records) + 1 + day, many_days.spec.trace_id,
                                 many_days.root_span_id, now - day * NS_PER_DAY, "o", f"d{day}")
                          for day in range(150)]
    same_day = recorded_session([RecordedCommand("pwd", b"/\r\n")], user="rec-beside-garbage")
    [good_legacy] = encoded(logs_request(before.records), now, encode_logs)
    poison = Record(None, b"".join(r.data for r in encoded(logs_request(many_days.records), now,
                                                           encode_logs)),
                    len(many_days.records))
    [good] = encoded(logs_request(same_day.records), now, encode_logs)
    garbage = Record(good.day, b"\xff" * 64, 3)  # a CRC-valid record ClickHouse cannot read

    sink = SinkProcess(tmp_path / "sink")
    logs_wal = tmp_path / "sink" / "store-wal" / "logs"  # the default logs WAL directory
    logs_wal.mkdir(parents=True)
    (logs_wal / "000000000007.sealed").write_bytes(
        legacy_record(good_legacy) + legacy_record(poison) + encode_record(garbage)
        + encode_record(good))

    def check_degraded(proc: SinkProcess) -> dict:
        return check_quarantined(proc, "logs", {1, 2}, poison.rows + garbage.rows)

    sink.launch()
    try:
        sink.wait_ready(status=("degraded",))
        sink.wait_for(lambda: sink.health()[1]["logs"]["wal"]["quarantine"]["records"] == 2)
        for rec in (before, same_day):
            sink.wait_for(lambda rec=rec: stored_records(sink, rec.session_id)[1]
                          == len(rec.records))
        assert stored_records(sink, many_days.session_id) == (0, 0)
        check_degraded(sink)
        entries = sorted(p.name for p in (logs_wal / "quarantine").iterdir())
        assert entries == ["000000000007-000001.json", "000000000007-000001.rec",
                           "000000000007-000002.json", "000000000007-000002.rec"]
        meta = json.loads((logs_wal / "quarantine" / "000000000007-000002.json").read_text())
        assert meta["spans"] == 3 and meta["segment"] == "000000000007"
        assert not list(logs_wal.glob("*.sealed"))
        during = recorded_session([RecordedCommand("id", b"uid=0\r\n")], user="rec-during")
        store_recording(sink, during)
    finally:
        sink.kill()
    assert sink.proc.returncode == -9

    restarted = SinkProcess(tmp_path / "sink")
    restarted.launch()
    try:
        restarted.wait_ready(status=("degraded",))
        check_degraded(restarted)
        after = recorded_session([RecordedCommand("whoami", b"root\r\n")], user="rec-after-kill")
        store_recording(restarted, after)
        for rec in (before, same_day, during, after):
            assert stored_records(restarted, rec.session_id) == (len(rec.records),
                                                                 len(rec.records))
        assert stored_records(restarted, many_days.session_id) == (0, 0)
        check_degraded(restarted)  # still the truth
    finally:
        restarted.stop()
