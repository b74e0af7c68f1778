"""Session queries over a large store: 100,000 sessions and 2,000,000 command spans sent through the
sink, then the API's latency (median and p90 of repeated calls) for the sessions list, filtered
lists, one session and the stats.

    .venv/bin/python bench/bench_queries.py [--sessions 100000] [--commands 20] [--repeat 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, drained, send_all

FLOOR_MS = 200.0
USERS = [f"user{i:03d}" for i in range(200)]
HOSTS = [f"host{i:02d}" for i in range(50)]
LINES = ["ls -la", "git status", "kubectl get pods", "vim app.conf", "sudo systemctl restart app",
         "tail -f /var/log/app.log", "psql -c 'select 1'", "false"]


def build(args: tuple[int, int, int, int]) -> list[bytes]:
    """Requests of whole sessions (start, commands, root), about 512 spans each."""
    seed, first, count, commands = args
    rng = random.Random(seed)
    now = time.time_ns()
    bodies, spans = [], []
    for i in range(first, first + count):
        line = [rng.choice(LINES) for _ in range(commands)]
        ended = i % 10 != 0  # every tenth session is still open
        spec = SessionSpec(user=USERS[i % len(USERS)], host=HOSTS[i % len(HOSTS)],
                           shell_type=("bash", "zsh", "python")[i % 3],
                           start_ns=now - rng.randrange(30 * 86400) * 10**9,
                           duration_s=rng.randrange(10, 7200), ended=ended,
                           commands=[Command(x, exit_code=int(x == "false")) for x in line])
        spans.extend(session_spans(spec))
        if len(spans) >= 512:
            bodies.append(request_for(spans).SerializeToString())
            spans = []
    if spans:
        bodies.append(request_for(spans).SerializeToString())
    return bodies


def timed_get(url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    started = time.perf_counter()
    step = 2_000
    jobs = [(i, lo, min(step, args.sessions - lo), args.commands) for i, lo in
            enumerate(range(0, args.sessions, step))]
    with multiprocessing.Pool(2) as pool:
        bodies = [b for chunk in pool.map(build, jobs) for b in chunk]
    print(f"generated {len(bodies)} requests in {time.perf_counter() - started:.1f}s", flush=True)

    with tempfile.TemporaryDirectory(prefix="shellspan-bench-") as tmp:
        sink = SinkProcess(Path(tmp) / "sink").start()
        try:
            started = time.perf_counter()
            send_all(sink.http_port, bodies, 8)
            drained(sink, timeout=900)
            load_s = time.perf_counter() - started
            counts = sink.sql("SELECT uniqExact(session_id) FROM shellspan.shell_sessions")["rows"][0][0]
            commands = sink.sql("SELECT count() FROM shellspan.shell_commands FINAL")["rows"][0][0]
            print(f"loaded {counts:,} sessions and {commands:,} command spans in {load_s:.1f}s")
            sample = sink.sessions(limit=1)[0]

            def api(path: str, **params) -> str:
                query = urllib.parse.urlencode(params)
                return f"{sink.api_url}{path}" + (f"?{query}" if query else "")

            cases = [
                ("sessions list (newest 100)", api("/api/sessions", limit=100)),
                ("sessions list, user filter", api("/api/sessions", user=USERS[7], limit=100)),
                ("sessions list, active only", api("/api/sessions", state="active", limit=100)),
                ("sessions list, last 24h", api("/api/sessions", since="24h", limit=100)),
                ("one session with commands", api(f"/api/sessions/{sample['session_id']}")),
                ("stats (all sessions)", api("/api/stats")),
            ]
            results = []
            for name, url in cases:
                timed_get(url, 2)  # warm
                times = timed_get(url, args.repeat)
                results.append((name, statistics.median(times), sorted(times)[int(0.9 * len(times)) - 1]))
        finally:
            sink.stop()

    print(f"\nAPI latency over {counts:,} sessions / {commands:,} commands "
          f"({args.repeat} calls each, ms)")
    print(f"  {'query':32} {'median':>8} {'p90':>8}")
    for name, median, p90 in results:
        print(f"  {name:32} {median:8.1f} {p90:8.1f}")
    list_median = results[0][1]
    print(f"\nsessions list median {list_median:.1f} ms; floor {FLOOR_MS:.0f} ms; "
          f"ratio floor / measured {FLOOR_MS / list_median:.1f}x: "
          f"{'PASS' if list_median < FLOOR_MS else 'FAIL'}")
    return 0 if list_median < FLOOR_MS else 1


if __name__ == "__main__":
    sys.exit(main())
