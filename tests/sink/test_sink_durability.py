"""Acknowledged spans survive a kill -9 of the sink and a store that refuses writes."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, send_until_acked


def stored_spans(sink: SinkProcess) -> tuple[int, int]:
    row = sink.sql("SELECT count(), uniqExact(TraceId, SpanId) FROM shellspan.otel_traces FINAL")["rows"][0]
    return int(row[0]), int(row[1])


@pytest.mark.slow
def test_kill_9_while_clients_send_loses_and_duplicates_nothing(tmp_path):
    specs = [SessionSpec(user=f"crash{i}", commands=[Command(f"cmd {i} {j}") for j in range(20)])
             for i in range(60)]
    bodies = [request_for(session_spans(s)).SerializeToString() for s in specs]
    expected = sum(len(session_spans(s)) for s in specs)

    sink = SinkProcess(tmp_path / "sink").start()
    ports = {"http": sink.http_port}
    deadline = time.monotonic() + 120
    results: list[int] = []

    def client(chunk: list[bytes]) -> None:
        for body in chunk:
            results.append(send_until_acked(lambda: ports["http"], body, deadline))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(bodies[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    while len(results) < len(bodies) // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.kill()  # SIGKILL: no flush, no shutdown hooks
    assert sink.proc.returncode == -9
    restarted = SinkProcess(tmp_path / "sink", store=sink.store)
    restarted.http_port = sink.http_port  # clients keep their endpoint, as a real deployment does
    restarted.start()
    for t in threads:
        t.join()
    try:
        assert len(results) == len(bodies)
        assert max(results) > 1, "some requests had to be retried across the crash"
        restarted.wait_for(lambda: stored_spans(restarted)[1] == expected, timeout=60)
        assert stored_spans(restarted) == (expected, expected)
        sessions = restarted.sessions(limit=1000)
        assert len(sessions) == len(specs)
        assert {s["command_count"] for s in sessions} == {20}
    finally:
        restarted.stop()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    return result.returncode == 0


@pytest.mark.slow
def test_store_out_of_space_then_back_loses_nothing(tmp_path):
    """The store's disk fills up: inserts fail, spans wait in the WAL, nothing is lost."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "256m"):
        pytest.skip("needs root to mount a small tmpfs for the store (a real full disk)")
    sink = SinkProcess(tmp_path / "sink", store=f"chdb://{disk / 'store'}",
                       extra_args=["--wal-dir", str(tmp_path / "wal")])
    try:
        sink.start()
        first = SessionSpec(user="before", commands=[Command("ls")])
        assert send_until_acked(lambda: sink.http_port,
                                request_for(session_spans(first)).SerializeToString(),
                                time.monotonic() + 30) == 1
        sink.wait_for(lambda: sink.sessions(user="before"))

        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=1024"],
                       capture_output=True)  # stops when the disk is full
        during = [SessionSpec(user="during", commands=[Command(f"c{i}")]) for i in range(10)]
        for spec in during:
            body = request_for(session_spans(spec)).SerializeToString()
            assert send_until_acked(lambda: sink.http_port, body, time.monotonic() + 30) >= 1
        # Acknowledged (the WAL is on another disk) but not yet storable.
        sink.wait_for(lambda: sink.get("/health")["wal"]["failed_inserts"] > 0, timeout=30)
        assert sink.get("/health")["wal"]["pending_bytes"] > 0

        filler.unlink()
        sink.wait_for(lambda: len(sink.sessions(user="during")) == 10, timeout=60)
        assert sink.get("/health")["wal"]["pending_bytes"] == 0
        counts = {s["session_id"]: s["command_count"] for s in sink.sessions(user="during")}
        assert counts == {s.session_id: 1 for s in during}
    finally:
        sink.stop()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)


def test_torn_wal_record_is_dropped_and_the_rest_replayed(tmp_path):
    """A crash mid-append leaves a torn record: it was never acknowledged, the rest replays."""
    spec = SessionSpec(user="torn", commands=[Command("ls")])
    body = request_for(session_spans(spec)).SerializeToString()
    sink = SinkProcess(tmp_path / "sink")
    wal = Path(sink.store[len("chdb://"):] + "-wal")  # the sink's default WAL directory
    wal.mkdir(parents=True)
    from shellspan_sink.rowbinary import encode_request
    from shellspan_sink.wal_records import Record, encode_record

    [(day, rows, count)], _, _, _, _ = encode_request(body, None, 128, 16384)
    record = encode_record(Record(day, rows, count))
    (wal / "000000000099.open").write_bytes(record + record[: len(record) // 2])
    restarted = sink.start()  # as after a crash mid-append
    try:
        found = restarted.wait_for(lambda: restarted.sessions(user="torn"), timeout=30)
        assert found[0]["command_count"] == 1
        assert "torn record" in restarted.log()
    finally:
        restarted.stop()


@pytest.mark.slow
def test_wal_disk_full_answers_retryable_and_recovers(tmp_path):
    wal = tmp_path / "wal"
    if os.geteuid() != 0 or not _mount_tmpfs(wal, "1m"):
        pytest.skip("needs root to mount a small tmpfs for the WAL (a real full disk)")
    sink = SinkProcess(tmp_path / "sink", extra_args=["--wal-dir", str(wal)])
    try:
        sink.start()
        filler = wal / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=64"],
                       capture_output=True)
        spec = SessionSpec(user="fullwal", commands=[Command("x" * 2000) for _ in range(200)])
        body = request_for(session_spans(spec)).SerializeToString()
        conn = http.client.HTTPConnection("127.0.0.1", sink.http_port, timeout=10)
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        reply = conn.getresponse()
        assert reply.status == 503 and reply.getheader("Retry-After")
        assert b"WAL write failed" in reply.read()
        assert sink.get("/health")["status"] == "ok"
        filler.unlink()
        assert send_until_acked(lambda: sink.http_port, body, time.monotonic() + 30) == 1
        found = sink.wait_for(lambda: sink.sessions(user="fullwal"), timeout=30)
        assert found[0]["command_count"] == 200
    finally:
        sink.stop()
        subprocess.run(["umount", "-l", str(wal)], capture_output=True)
