"""Ingest throughput: OTLP/HTTP protobuf batches through the running sink into chDB, against a bare
clickhouse-connect columnar insert of the same rows, measured side by side in one run.

    .venv/bin/python bench/bench_ingest.py [--spans 500000] [--clients 4] [--batch 512]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from shellspan import semconv
from shellspan_testing.otlp_builders import kv, request_for
from shellspan_testing.sinkproc import SinkProcess, drained, send_all

SEGMENT_ROWS = 100_000  # the sink inserts one WAL segment of up to this many spans at a time
COMMANDS = ["ls -la", "git status", "kubectl get pods -n prod", "vim /etc/hosts", "cd /srv/app",
            "systemctl restart nginx", "tail -n 100 /var/log/syslog", "psql -c 'select 1'"]


def make_batches(total: int, batch: int, seed: int = 7) -> list[bytes]:
    """Command spans of many sessions, 512 to a request, as a shell host would send them."""
    rng = random.Random(seed)
    bodies = []
    now = time.time_ns()
    for b in range(total // batch):
        spans = []
        trace_id = rng.randbytes(16)
        for i in range(batch):
            if i % 16 == 0:
                trace_id = rng.randbytes(16)
            line = rng.choice(COMMANDS)
            start = now - rng.randrange(10**12)
            spans.append(Span(
                trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8),
                name=semconv.SPAN_COMMAND, start_time_unix_nano=start,
                end_time_unix_nano=start + rng.randrange(10**9),
                attributes=[kv(semconv.SESSION_ID, trace_id.hex()), kv(semconv.COMMAND_LINE, line),
                            kv(semconv.COMMAND_NAME, line.split()[0]),
                            kv(semconv.COMMAND_SEQ, i), kv(semconv.CWD, "/home/ops"),
                            kv(semconv.EXIT_CODE, 0), kv(semconv.USER_NAME, f"user{b % 50}"),
                            kv(semconv.HOST_NAME, f"host{b % 20}")],
                status=Status(code=Status.STATUS_CODE_UNSET)))
        bodies.append(request_for(spans, service="bench").SerializeToString())
    return bodies


BARE_SCRIPT = r"""
import pickle, sys, time
import clickhouse_connect
from shellspan_sink.rowbinary import COLUMNS, encode_request
from shellspan_sink.schema import SchemaOptions, all_statements
path, bodies_file, rows_per_insert = sys.argv[1], sys.argv[2], int(sys.argv[3])
bodies = pickle.load(open(bodies_file, "rb"))
# The same rows the sink writes, encoded before the clock starts: only the inserts are timed.
chunks = []
for body in bodies:
    by_day, rows, _, _, _ = encode_request(body, None, 128, 16384)
    chunks.append((b"".join(data for _, data, _ in by_day), rows))
client = clickhouse_connect.get_client(dsn="chdb://" + path)
for stmt in all_statements(SchemaOptions()):
    client.command(stmt)
n = sum(rows for _, rows in chunks)
per_insert = max(1, rows_per_insert // max(1, chunks[0][1]))
started = time.perf_counter()
for lo in range(0, len(chunks), per_insert):
    data = b"".join(c[0] for c in chunks[lo:lo + per_insert])
    client.raw_insert("shellspan.otel_traces", list(COLUMNS), insert_block=data, fmt="RowBinary",
                      settings={"optimize_on_insert": 0})  # as the sink inserts
elapsed = time.perf_counter() - started
count = client.query("SELECT count() FROM shellspan.otel_traces").result_rows[0][0]
assert count == n, (count, n)
print(elapsed)
"""


def bare_insert_seconds(bodies: list[bytes], workdir: Path, rows_per_insert: int) -> float:
    import pickle

    bodies_file = workdir / "bodies.pickle"
    bodies_file.write_bytes(pickle.dumps(bodies))
    out = subprocess.run([sys.executable, "-c", BARE_SCRIPT, str(workdir / "bare"), str(bodies_file),
                          str(rows_per_insert)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    bodies = make_batches(args.spans, args.batch)
    total = len(bodies) * args.batch
    with tempfile.TemporaryDirectory(prefix="shellspan-bench-") as tmp:
        workdir = Path(tmp)
        sink = SinkProcess(workdir / "sink").start()
        try:
            send_all(sink.http_port, bodies[: max(1, len(bodies) // 20)], args.clients)  # warm-up
            drained(sink)
            warm = sink.get("/health")["wal"]["inserted_spans"]
            started = time.perf_counter()
            acked = send_all(sink.http_port, bodies, args.clients)
            drained(sink)  # sustained means stored, not only acknowledged
            elapsed = time.perf_counter() - started
            health = sink.get("/health")
            stored = sink.sql("SELECT count() FROM shellspan.otel_traces FINAL")["rows"][0][0]
        finally:
            sink.stop()
        assert health["wal"]["inserted_spans"] - warm == total, health
        assert stored == total, (stored, total)  # warm-up spans are re-sent copies
        bare = bare_insert_seconds(bodies, workdir, rows_per_insert=SEGMENT_ROWS)

    sink_rate, bare_rate = total / elapsed, total / bare
    print(f"ingest: {total} spans in {len(bodies)} OTLP/HTTP protobuf requests of {args.batch} spans, "
          f"{args.clients} concurrent clients, cores={os.cpu_count()}")
    print(f"  acknowledged by the sink (in its WAL on disk):                  {total / acked:10,.0f} spans/s")
    print(f"  through the sink into ClickHouse (until stored, encoder={health['encoder']}):"
          f" {sink_rate:10,.0f} spans/s")
    print(f"  bare clickhouse-connect insert of the same rows (RowBinary, {SEGMENT_ROWS:,} rows/insert): "
          f"{bare_rate:10,.0f} spans/s")
    met = sink_rate >= 50_000
    print(f"  ratio sink / bare insert: {sink_rate / bare_rate:.2f}   (floor: sink >= 50,000 spans/s: "
          f"{'PASS' if met else 'FAIL'})")
    if health["encoder"] == "python" and os.environ.get("SHELLSPAN_ENCODER") == "python":
        print("  (the reference encoder, forced for comparison: the floor is judged on the default "
              "build, which uses the compiled encoder where cargo is available)")
        return 0
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
