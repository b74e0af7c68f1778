"""The store bench_queries.py measures: N sessions of M commands each, sent through the sink once
and kept in a cache directory outside the repository, so later runs (and other query benchmarks)
reuse it instead of loading a million sessions again.

The cache key is the dataset's shape and DATASET_VERSION (bump it when `build` changes). A cached
store keeps the times it was built with: ages such as "last 24h" and which sessions are still
"active" drift as it gets older (rebuild with --fresh). A sink started on it applies any newer
schema migration first.

    SHELLSPAN_BENCH_CACHE   where stores are kept (default ~/.cache/shellspan-bench)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, drained, send_all

DATASET_VERSION = 2
USERS = [f"user{i:03d}" for i in range(200)]
HOSTS = [f"host{i:02d}" for i in range(50)]
LINES = ["ls -la", "git status", "kubectl get pods", "vim app.conf", "sudo systemctl restart app",
         "tail -f /var/log/app.log", "psql -c 'select 1'", "false"]
# One command in a thousand deletes a pod: the word "delete" is what command search looks for.
RARE_WORD = "delete"
RARE_SHARE = 0.001
STEP = 2_000  # sessions per generation job
WINDOW = 10  # jobs generated, then sent, at a time (bounds the memory held)


def cache_root() -> Path:
    return Path(os.environ.get("SHELLSPAN_BENCH_CACHE") or Path.home() / ".cache" / "shellspan-bench")


def build(args: tuple[int, int, int, int]) -> list[bytes]:
    """Requests of whole sessions (start, commands, root), about 512 spans each."""
    seed, first, count, commands = args
    rng = random.Random(seed)
    now = time.time_ns()
    bodies, spans = [], []
    for i in range(first, first + count):
        line = [f"kubectl {RARE_WORD} pod web-{rng.randrange(1000)}" if rng.random() < RARE_SHARE
                else rng.choice(LINES) for _ in range(commands)]
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


@dataclass(frozen=True)
class Loaded:
    sessions: int
    commands: int
    load_s: float  # generating and sending, until every span was stored
    store_bytes: int  # the store directory on disk, right after loading
    built_at: str
    reused: bool = False


def _disk_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def open_store(sessions: int, commands: int, *, fresh: bool = False) -> tuple[SinkProcess, Loaded]:
    """A running sink over the cached store of this shape, loading it first if needed."""
    home = cache_root() / f"queries-v{DATASET_VERSION}-{sessions}-sessions-{commands}-commands"
    marker = home / "loaded.json"
    if marker.exists() and not fresh:
        loaded = Loaded(**{**json.loads(marker.read_text()), "reused": True})
        print(f"reusing the store in {home} (built {loaded.built_at})", flush=True)
        return SinkProcess(home / "sink").start(timeout=600), loaded
    shutil.rmtree(home, ignore_errors=True)
    sink = SinkProcess(home / "sink").start()
    try:
        started = time.perf_counter()
        jobs = [(i, lo, min(STEP, sessions - lo), commands)
                for i, lo in enumerate(range(0, sessions, STEP))]
        with multiprocessing.Pool(2) as pool:
            for w in range(0, len(jobs), WINDOW):
                bodies = [b for chunk in pool.map(build, jobs[w:w + WINDOW]) for b in chunk]
                send_all(sink.http_port, bodies, 8)
                done = min((w + WINDOW) * STEP, sessions)
                print(f"  sent {done:,} of {sessions:,} sessions "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        drained(sink, timeout=3600)
        load_s = time.perf_counter() - started
        stored = sink.sql("SELECT uniqExact(session_id) FROM shellspan.shell_sessions")["rows"][0][0]
        stored_commands = sink.sql(
            "SELECT count() FROM shellspan.shell_commands FINAL")["rows"][0][0]
        loaded = Loaded(stored, stored_commands, round(load_s, 1),
                        _disk_bytes(Path(sink.store.removeprefix("chdb://"))),
                        time.strftime("%Y-%m-%d %H:%M:%S"))
    except BaseException:
        sink.stop()
        raise
    marker.write_text(json.dumps(asdict(loaded), indent=2))
    return sink, loaded
