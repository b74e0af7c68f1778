"""Terminal recordings on the sink, measured side by side in one run:

* storage: typical shell output (`ls --color`, a compiler's diagnostics, `top` refreshing),
  captured from the real programs in a pty, stored through the sink; bytes on disk against the
  raw output, the recording table's payload (strong ZSTD) beside the same bytes in the
  contrib-shaped raw table (ZSTD(1));
* ingest: OTLP log records through the sink (Python encoder) until stored, against a bare
  clickhouse-connect insert of the same rows;
* playback of a one-hour session: the API's first byte of the asciicast and the whole file, and
  (with Chromium installed) the web player ready on the session page.

    .venv/bin/python bench/bench_recordings.py [--records 60000] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shellspan_testing.otlp_builders import post, request_for
from shellspan_testing.recordings import (
    RecordedCommand,
    chunks,
    in_pty,
    logs_request,
    post_logs,
    recorded_session,
    stored_sizes,
    typical_outputs,
)
from shellspan_testing.sinkproc import SinkProcess, drained, send_all

STORAGE_FLOOR = 0.25  # stored bytes / raw output
FIRST_BYTE_FLOOR_S = 1.0
PLAYER_READY_FLOOR_S = 1.0
HOUR_S = 3600


def send_recording(sink: SinkProcess, rec, per_request: int = 400) -> None:
    assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString()).status == 200
    for lo in range(0, len(rec.records), per_request):
        reply = post_logs(sink.otlp_http_endpoint,
                          logs_request(rec.records[lo:lo + per_request]).SerializeToString())
        assert reply.status == 200, reply.body


# --- storage ------------------------------------------------------------------------------------



LISTED = [d for d in ("/usr/bin", "/usr/lib", "/usr/share", "/etc", "/usr/share/doc",
                      "/usr/lib/x86_64-linux-gnu", "/usr/include", "/var/lib/dpkg/info",
                      "/usr/share/man/man1", "/usr/sbin", "/usr/share/locale", "/usr/local/lib",
                      "/var/lib", "/usr/share/zoneinfo", "/usr/lib/systemd") if os.path.isdir(d)]
MAX_OUTPUT = 256 * 1024  # one command's output at most, so no single listing dominates


def session_commands(i: int) -> list[RecordedCommand]:
    """Session `i`: three directories listed in colour (a different three each session), the
    compiler's diagnostics, and a `top` run of its own, each captured from the real program."""
    outputs = {f"ls --color=always -l {d}": in_pty(["ls", "--color=always", "-l", d])
               for d in LISTED[3 * i:3 * i + 3]}
    outputs.update({line: data for line, data in typical_outputs().items()
                    if not line.startswith("ls")})
    return [RecordedCommand(line, data[:MAX_OUTPUT], duration_s=2.0)
            for line, data in outputs.items() if data]


def bench_storage(workdir: Path) -> bool:
    sessions = [session_commands(i) for i in range(4)]
    sink = SinkProcess(workdir / "storage").start()
    try:
        for i, commands in enumerate(sessions):
            send_recording(sink, recorded_session(commands, user=f"store{i}"))
        drained(sink)
    finally:
        sink.stop()
    m = stored_sizes(sink)
    raw = m["raw"]
    print(f"storage: {raw / 2**20:.1f} MiB of terminal output in 4 sessions (chunks of 4 KiB), "
          "after merges")
    for i, commands in enumerate(sessions):
        print(f"  session {i}: " + ", ".join(f"{c.line.split()[0]} {len(c.output) / 1024:.0f} KiB"
                                            for c in commands))
    print(f"  recording payload, ZSTD(12) (shell_recordings.data):   {m['payload']:>10,} bytes  "
          f"{m['payload'] / raw:6.1%} of raw")
    print(f"  recording table on disk, every column and index:        {m['recordings']:>10,} bytes  "
          f"{m['recordings'] / raw:6.1%} of raw")
    print(f"  the same payload at ZSTD(1) (otel_logs.Body, contrib codec): {m['body_zstd1']:>7,} bytes  "
          f"{m['body_zstd1'] / raw:6.1%} of raw   (ratio {m['payload'] / m['body_zstd1']:.2f})")
    print(f"  contrib-shaped raw table otel_logs on disk:            {m['otel_logs']:>10,} bytes  "
          f"{m['otel_logs'] / raw:6.1%} of raw")
    total = m["recordings"] + m["otel_logs"]
    met = m["recordings"] <= STORAGE_FLOOR * raw
    print(f"  both tables together: {total / raw:.1%} of raw; floor: recording table <= "
          f"{STORAGE_FLOOR:.0%} of raw: {'PASS' if met else 'FAIL'}")
    return met


# --- ingest -------------------------------------------------------------------------------------

BARE_SCRIPT = r"""
import pickle, sys, time
import clickhouse_connect
from shellspan_sink.logs_rowbinary import COLUMNS, encode_request
from shellspan_sink.schema import SchemaOptions, all_statements
path, bodies_file = sys.argv[1], sys.argv[2]
bodies = pickle.load(open(bodies_file, "rb"))
# before the clock starts: the rows of each request, whatever days they fall on
encoded = [b"".join(data for _, data, _ in encode_request(body, None, 128, 16384)[0])
           for body in bodies]
client = clickhouse_connect.get_client(dsn="chdb://" + path)
for stmt in all_statements(SchemaOptions()):
    client.command(stmt)
started = time.perf_counter()
for lo in range(0, len(encoded), 50):
    data = b"".join(encoded[lo:lo + 50])
    client.raw_insert("shellspan.otel_logs", list(COLUMNS), insert_block=data, fmt="RowBinary",
                      settings={"optimize_on_insert": 0})
print(time.perf_counter() - started)
"""


def ingest_bodies(records: int, per_request: int) -> tuple[list[bytes], int]:
    """Requests of recording records from many sessions: output chunks of every size, as a
    recorder batches them (keystroke echoes to 4 KiB reads)."""
    rng = random.Random(5)
    sample = b"".join(typical_outputs().values())
    bodies, raw = [], 0
    sessions = [recorded_session([RecordedCommand("true", b"")], user=f"ingest{i}")
                for i in range(max(1, records // 2000))]
    seq = {s.session_id: 2 for s in sessions}
    from shellspan_testing.recordings import record

    now = time.time_ns()
    for lo in range(0, records, per_request):
        batch = []
        for _ in range(min(per_request, records - lo)):
            s = rng.choice(sessions)
            size = rng.choice((1, 3, 40, 300, 1200, 4096))
            start = rng.randrange(0, len(sample) - size)
            data = chunks(sample[start:start + size + 4], size)[0].decode("utf-8", "replace")
            raw += len(data.encode())
            batch.append(record(seq[s.session_id], s.spec.trace_id, s.command_span_ids[0],
                                now + seq[s.session_id] * 1000, "o", data))
            seq[s.session_id] += 1
        bodies.append(logs_request(batch).SerializeToString())
    return bodies, raw


def bench_ingest(workdir: Path, records: int, clients: int) -> None:
    import pickle

    bodies, raw = ingest_bodies(records, per_request=200)
    sink = SinkProcess(workdir / "ingest").start()
    try:
        send_all(sink.http_port, bodies[: max(1, len(bodies) // 20)], clients, path="/v1/logs")
        drained(sink)  # warm-up: re-sent copies of the first requests, stored once
        warm = sink.get("/health")["logs"]["wal"]["inserted_spans"]
        started = time.perf_counter()
        acked = send_all(sink.http_port, bodies, clients, path="/v1/logs")
        drained(sink)  # sustained means stored, not only acknowledged
        stored = time.perf_counter() - started
        health = sink.get("/health")
    finally:
        sink.stop()
    assert health["logs"]["wal"]["inserted_spans"] - warm == records, health["logs"]
    bodies_file = workdir / "bodies.pickle"
    bodies_file.write_bytes(pickle.dumps(bodies))
    bare = float(subprocess.run([sys.executable, "-c", BARE_SCRIPT, str(workdir / "bare"),
                                 str(bodies_file)], capture_output=True, text=True,
                                check=True).stdout.strip().splitlines()[-1])
    mib = raw / 2**20
    print(f"ingest: {records} log records ({mib:.1f} MiB of output) in {len(bodies)} OTLP/HTTP "
          f"protobuf requests of 200, {clients} clients, encoder=python, cores={os.cpu_count()}")
    print(f"  acknowledged by the sink (in its WAL on disk): {records / acked:10,.0f} records/s"
          f"  {mib / acked:6.1f} MiB/s")
    print(f"  through the sink into ClickHouse (stored):     {records / stored:10,.0f} records/s"
          f"  {mib / stored:6.1f} MiB/s")
    print(f"  bare insert of the same rows (RowBinary, 10,000 rows/insert): "
          f"{records / bare:10,.0f} records/s  (ratio sink / bare {bare / stored:.2f})")


# --- playback of a one-hour session -------------------------------------------------------------

def hour_session(outputs: dict[str, bytes]) -> tuple:
    """One hour: 600 commands, each printing a slice of real output, every tenth a `top` run
    refreshing for half a minute."""
    rng = random.Random(11)
    top = outputs.get("top -d 0.2 -n 25", b"")
    others = [data for line, data in outputs.items() if not line.startswith("top")]
    commands = []
    for i in range(600):
        if i % 10 == 9 and top:
            commands.append(RecordedCommand("top", top * 3, duration_s=30))
        else:
            data = rng.choice(others)
            lo = rng.randrange(0, max(1, len(data) - 8000))
            commands.append(RecordedCommand(f"ls -l dir{i}", data[lo:lo + rng.randrange(200, 8000)],
                                            duration_s=2.5))
    rec = recorded_session(commands, user="one-hour", chunk_bytes=2048)
    return rec


def first_byte(sink: SinkProcess, path: str) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds to the whole body, bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", sink.api_port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    resp.read(1)
    first = time.perf_counter() - started
    size = 1 + len(resp.read())
    whole = time.perf_counter() - started
    conn.close()
    return first, whole, size


def player_ready(sink: SinkProcess, session_id: str, runs: int = 3) -> list[tuple[float, float]]:
    """[(session page loaded, player ready)] in seconds since navigation start."""
    from shellspan_testing.browser import Browser

    browser = Browser()
    try:
        out = []
        for _ in range(runs):
            browser.goto(f"{sink.api_url}/#/sessions")
            browser.goto(f"{sink.api_url}/#/sessions/{session_id}")
            browser.call("Page.reload", ignoreCache=True)
            browser.wait("document.body && document.body.dataset.loaded === '1'", timeout=30)
            ready = browser.wait("document.querySelector('[data-testid=player]')?.dataset.readyAt",
                                 timeout=30)
            loaded = browser.js("performance.getEntriesByType('navigation')[0].loadEventEnd")
            out.append((float(loaded) / 1000, float(ready) / 1000))
        return out
    finally:
        browser.close()


def bench_playback(workdir: Path) -> bool:
    rec = hour_session(typical_outputs())
    sink = SinkProcess(workdir / "hour").start()
    try:
        send_recording(sink, rec)
        drained(sink)
        sink.wait_for(lambda: len(sink.session(rec.session_id)["commands"]) == 600, timeout=120)
        path = f"/api/sessions/{rec.session_id}/recording"
        runs = [first_byte(sink, path) for _ in range(5)]
        late = [first_byte(sink, path + "?from_seq=590") for _ in range(5)]
        raw = sum(len(r.body.string_value.encode()) for r in rec.records)
        first = statistics.median(r[0] for r in runs)
        print(f"playback: a one-hour session, {len(rec.records):,} records, "
              f"{raw / 2**20:.1f} MiB of output, 600 commands")
        print(f"  API first byte of the asciicast, median of 5:     {first * 1000:8.0f} ms"
              f"   (whole file {statistics.median(r[1] for r in runs):.2f} s, "
              f"{runs[0][2] / 2**20:.1f} MiB)")
        print(f"  from command 590 (?from_seq=590), first byte:     "
              f"{statistics.median(r[0] for r in late) * 1000:8.0f} ms")
        met = first < FIRST_BYTE_FLOOR_S
        print(f"  floor: first byte < {FIRST_BYTE_FLOOR_S:.0f} s: {'PASS' if met else 'FAIL'}")
        from shellspan_testing.browser import CHROMIUM

        if not os.path.exists(CHROMIUM):
            print("  web player: skipped, chromium is not installed")
            return met
        ready = player_ready(sink, rec.session_id)
        page = statistics.median(r[0] for r in ready)
        player = statistics.median(r[1] for r in ready)
        print(f"  web player ready (since navigation start), median of 3: {player * 1000:6.0f} ms"
              f"   (the page itself loaded at {page * 1000:.0f} ms)")
        ok = player < PLAYER_READY_FLOOR_S
        print(f"  floor: player ready < {PLAYER_READY_FLOOR_S:.0f} s: {'PASS' if ok else 'FAIL'}")
        return met and ok
    finally:
        sink.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--only", choices=("storage", "ingest", "playback"))
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="shellspan-bench-rec-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "storage"):
            ok &= bench_storage(workdir)
        if args.only in (None, "ingest"):
            bench_ingest(workdir, args.records, args.clients)
        if args.only in (None, "playback"):
            ok &= bench_playback(workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
