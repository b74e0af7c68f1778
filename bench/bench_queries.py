"""Session queries over a large store, measured through the sink's API: the sessions list (newest
100, and filtered), one session with its commands, the stats (all sessions, last 7 days) and
command search (a word in 0.1% of commands, as text and as a regular expression).

    .venv/bin/python bench/bench_queries.py [--sessions 100000] [--commands 20] [--repeat 30]
                                            [--cache-dir DIR] [--rebuild] [--only sessions|search]

The store is built once, by sending whole sessions (start span, commands, root span; every tenth
session left open) through a real sink, and kept in a cache directory keyed by the arguments
(default ~/.cache/shellspan/bench-queries/), so later runs reuse it: loading 1,000,000 sessions
takes a while on two cores. Times in the store are relative to when it was built, so the cases
use the build time (the "last 7 days" case is the 7 days before the build).

Each group of cases lives in its own function (`scale_cases`, ...), all run over the same store.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, drained, send_all

DATA_VERSION = 3  # bump when the generated data changes: a new cache directory
DAY_S = 86400
USERS = [f"user{i:03d}" for i in range(200)]
HOSTS = [f"host{i:02d}" for i in range(50)]
LINES = ["ls -la", "git status", "kubectl get pods", "vim app.conf", "sudo systemctl restart app",
         "tail -f /var/log/app.log", "psql -c 'select 1'", "false"]
RARE_WORD = "delete"  # in `kubectl delete pod web-N`, one command in a thousand
RARE_SHARE = 0.001
CHUNK = 2_000  # sessions generated per worker task


def build(job: tuple[int, int, int, int, int]) -> list[bytes]:
    """Requests of whole sessions (start, commands, root), about 512 spans each."""
    seed, first, count, commands, now = job
    rng = random.Random(seed)
    bodies, spans = [], []
    for i in range(first, first + count):
        line = [f"kubectl {RARE_WORD} pod web-{rng.randrange(1000)}" if rng.random() < RARE_SHARE
                else rng.choice(LINES) for _ in range(commands)]
        spec = SessionSpec(user=USERS[i % len(USERS)], host=HOSTS[i % len(HOSTS)],
                           shell_type=("bash", "zsh", "python")[i % 3],
                           start_ns=now - rng.randrange(30 * DAY_S) * 10**9,
                           duration_s=rng.randrange(10, 7200), ended=i % 10 != 0,
                           commands=[Command(x, exit_code=int(x == "false")) for x in line],
                           trace_id=rng.randbytes(16))
        spans.extend(session_spans(spec))
        if len(spans) >= 512:
            bodies.append(request_for(spans).SerializeToString())
            spans = []
    if spans:
        bodies.append(request_for(spans).SerializeToString())
    return bodies


def disk_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


@dataclass
class BenchStore:
    """A store built by this benchmark, and what is known about it (``meta.json``)."""

    directory: Path
    meta: dict

    @property
    def store_dir(self) -> Path:
        return self.directory / "store"

    def sink(self, log_dir: Path) -> SinkProcess:
        return SinkProcess(log_dir, store=f"chdb://{self.store_dir}")


def cache_directory(root: Path, sessions: int, commands: int) -> Path:
    return root / f"s{sessions}-c{commands}-v{DATA_VERSION}"


def load_store(directory: Path, sessions: int, commands: int, log_dir: Path) -> BenchStore:
    """Build the store in `directory` through a real sink; record how long it took."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    store = BenchStore(directory, {})
    now = time.time_ns()
    jobs = [(i, lo, min(CHUNK, sessions - lo), commands, now)
            for i, lo in enumerate(range(0, sessions, CHUNK))]
    sink = store.sink(log_dir).start()
    try:
        started = time.perf_counter()
        requests = 0
        with multiprocessing.Pool(2) as pool:
            for n, bodies in enumerate(pool.imap(build, jobs), 1):
                send_all(sink.http_port, bodies, 8)
                requests += len(bodies)
                if n % 50 == 0:
                    print(f"  sent {n * CHUNK:,} sessions ({requests:,} requests) in "
                          f"{time.perf_counter() - started:.0f}s", flush=True)
        drained(sink, timeout=3600)
        load_s = time.perf_counter() - started
        stored = sink.sql("SELECT uniqExact(session_id) FROM shellspan.shell_sessions")["rows"][0][0]
        middle = sink.sessions(limit=1, until=str((now / 1e9) - 15 * DAY_S))[0]["session_id"]
    finally:
        sink.stop()
    store.meta = {"sessions": sessions, "commands": commands, "stored_sessions": stored,
                  "built_at": now / 1e9, "load_s": round(load_s, 1), "requests": requests,
                  "sample_session": middle, "bytes_after_load": disk_bytes(store.store_dir)}
    (directory / "meta.json").write_text(json.dumps(store.meta, indent=2))
    return store


def cached_store(root: Path, sessions: int, commands: int, rebuild: bool,
                 log_dir: Path) -> BenchStore:
    directory = cache_directory(root, sessions, commands)
    meta = directory / "meta.json"
    if meta.exists() and not rebuild:
        print(f"reusing the store in {directory} (--rebuild to build it again)", flush=True)
        return BenchStore(directory, json.loads(meta.read_text()))
    print(f"building a store of {sessions:,} sessions x {commands} commands in {directory}",
          flush=True)
    return load_store(directory, sessions, commands, log_dir)


# --- the cases -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: dict
    floor_ms: float | None = None
    repeat: int | None = None  # fewer calls for the slow comparisons


def scale_cases(store: BenchStore) -> list[Case]:
    """The sessions list, one session and the stats, with their floors at 1,000,000 sessions."""
    week_ago = str(int(store.meta["built_at"] - 7 * DAY_S))
    return [
        Case("sessions list (newest 100)", "/api/sessions", {"limit": 100}, 100),
        Case("sessions list, user filter", "/api/sessions", {"user": USERS[7], "limit": 100}, 100),
        Case("sessions list, active only", "/api/sessions", {"state": "active", "limit": 100}),
        Case("sessions list, 2nd page", "/api/sessions", {"limit": 100, "cursor": "<page2>"}),
        Case("one session with commands", f"/api/sessions/{store.meta['sample_session']}", {}, 30),
        Case("stats (all sessions)", "/api/stats", {}, 300),
        Case("stats (last 7 days)", "/api/stats", {"since": week_ago}, 300),
        Case("stats, user filter", "/api/stats", {"user": USERS[7]}),
        Case("stats (all), exact computation", "/api/stats", {"exact": 1}, None, 3),
    ]


def search_cases(store: BenchStore) -> list[Case]:
    """Command search: the word in 0.1% of commands, as a substring and as a regular expression,
    with a filter, a text that is nowhere, and a common word."""
    return [
        Case(f"commands ?q={RARE_WORD} (0.1%)", "/api/commands", {"q": RARE_WORD}, 300),
        Case("commands, regex", "/api/commands",
             {"q": rf"kubectl\s+{RARE_WORD}\s+pod\s+web-\d+", "regex": 1}, 1000),
        Case(f"commands ?q={RARE_WORD}&user=", "/api/commands", {"q": RARE_WORD, "user": USERS[7]}),
        Case("commands ?q=<nowhere>", "/api/commands", {"q": "DROP DATABASE"}),
        Case("commands ?q=<nowhere>&regex=1", "/api/commands",
             {"q": r"DROP\s+DATABASE", "regex": 1}),
        Case("commands ?q=git (12.5%)", "/api/commands", {"q": "git"}),
    ]


CASE_GROUPS: dict[str, Callable[[BenchStore], list[Case]]] = {
    "sessions": scale_cases, "search": search_cases}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as resp:
        return resp.read()


def timed(url: str, repeat: int) -> Iterator[float]:
    for _ in range(repeat):
        started = time.perf_counter()
        fetch(url)
        yield (time.perf_counter() - started) * 1000


def resolve(sink: SinkProcess, case: Case) -> str:
    params = dict(case.params)
    if params.get("cursor") == "<page2>":
        params["cursor"] = sink.get("/api/sessions", limit=100)["next_cursor"]
    query = urllib.parse.urlencode(params)
    return f"{sink.api_url}{case.path}" + (f"?{query}" if query else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "shellspan" / "bench-queries")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if cached")
    parser.add_argument("--only", choices=tuple(CASE_GROUPS), help="run one group of cases")
    args = parser.parse_args()

    log_dir = Path(args.cache_dir) / "logs"
    store = cached_store(args.cache_dir, args.sessions, args.commands, args.rebuild, log_dir)
    meta = store.meta
    print(f"store: {meta['stored_sessions']:,} sessions, {meta['sessions'] * meta['commands']:,} "
          f"commands; loaded through the sink in {meta['load_s']:.0f}s "
          f"({meta['requests']:,} requests); {meta['bytes_after_load'] / 2**20:,.0f} MiB on disk "
          "after the load", flush=True)

    sink = store.sink(log_dir)
    started = time.perf_counter()
    sink.start(timeout=1800)  # the first start after an upgrade applies the new migrations
    print(f"sink ready in {time.perf_counter() - started:.1f}s", flush=True)
    try:
        if "rollups" in sink.get("/health"):  # the first start after an upgrade computes them
            sink.wait_for(lambda: (r := sink.get("/health")["rollups"])["watermark_ms"]
                          and r["pending_hours"] == 0, timeout=3600, interval=1.0)
            print(f"rollups current {time.perf_counter() - started:.1f}s after the start",
                  flush=True)
        print(f"{disk_bytes(store.store_dir) / 2**20:,.0f} MiB on disk now", flush=True)
        results = []
        groups = [CASE_GROUPS[args.only]] if args.only else list(CASE_GROUPS.values())
        for case in [c for group in groups for c in group(store)]:
            url = resolve(sink, case)
            repeat = case.repeat or args.repeat
            try:
                fetch(url)  # warm
                times = list(timed(url, repeat))
            except urllib.error.HTTPError as exc:
                results.append((case, None, f"HTTP {exc.code}: {exc.read()[:80]!r}"))
                continue
            results.append((case, times, ""))
            print(f"  {case.name}: median {statistics.median(times):.1f} ms", flush=True)
    finally:
        sink.stop()

    load = os.getloadavg()[0]
    print(f"\nAPI latency over {meta['stored_sessions']:,} sessions / "
          f"{meta['sessions'] * meta['commands']:,} commands (ms; {args.repeat} calls per case "
          f"unless noted; load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"  {'query':34} {'median':>8} {'p90':>8} {'floor':>7}  verdict")
    failed = []
    for case, times, error in results:
        if times is None:
            print(f"  {case.name:34} {error}")
            continue
        median = statistics.median(times)
        p90 = sorted(times)[max(int(0.9 * len(times)) - 1, 0)]
        verdict = ""
        if case.floor_ms is not None:
            ok = median <= case.floor_ms
            verdict = f"{'PASS' if ok else 'FAIL'} (floor / measured {case.floor_ms / median:.1f}x)"
            if not ok:
                failed.append(case.name)
        floor = f"{case.floor_ms:.0f}" if case.floor_ms else "-"
        note = f"  ({len(times)} calls)" if case.repeat else ""
        print(f"  {case.name:34} {median:8.1f} {p90:8.1f} {floor:>7}  {verdict}{note}")
    exact = next((statistics.median(t) for c, t, _ in results if t and "exact" in c.name), None)
    fast = next((statistics.median(t) for c, t, _ in results if t and c.name == "stats (all sessions)"), None)
    if exact and fast:
        print(f"\nstats from the aggregates vs the exact computation: {exact / fast:.1f}x faster")
    print("\nfloors " + (f"missed: {', '.join(failed)}" if failed else "met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
