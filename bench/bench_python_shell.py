"""Start-up (to the first prompt) and exit time of `shellspan python` against the bare REPL.

    .venv/bin/python bench/bench_python_shell.py [--runs 15]

Both shells run in the same pty harness in the same run, alternating, with the collector (a real
sink) up and then down (a closed port). Start-up: from spawn to the first ">>> " on the terminal.
Exit: from sending Ctrl-D at the prompt to the process being gone, measured twice per shell:
"quick" (Ctrl-D 0.05 s after the first prompt, while the export thread is only starting) and
"settled" (0.5 s after it, when the export thread is set up and has sent the start span, as in
any real session). Start-up samples of both kinds of run are pooled.

Runs alternate which shell goes first and pause briefly after each shell, so that one shell's
exit work (a detached helper sending its spool entry, the sink storing it) does not land on the
next measurement.

Floors (medians, every case): at most +15 ms start-up and +100 ms exit against the bare REPL.
The exit status is 1 when a floor is missed, else 0.

With ``--baseline-src DIR`` (the ``instrumentation/src`` of another checkout, e.g. from
``git archive``), a third shell runs in the same rotation: ``shellspan python`` with that code
first on ``PYTHONPATH``, so a change is compared with the code before it under the same load.

The shells get a private byte-code cache (PYTHONPYCACHEPREFIX, filled by the warm-up runs) so
both are measured as installed, with compiled modules, even when PYTHONDONTWRITEBYTECODE is set
and the sources are newer than their cached byte code.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect

from shellspan_testing.sinkproc import SinkProcess, free_port

BIN = Path(sys.executable).parent
BARE = [sys.executable, "-q"]
INSTRUMENTED = [str(BIN / "shellspan"), "python", "-q"]
FLOOR_START_MS, FLOOR_EXIT_MS = 15.0, 100.0
PAUSES = {"quick": 0.05, "settled": 0.5}  # seconds between the first prompt and Ctrl-D
SETTLE_S = 0.25  # after each shell: let its detached exit helper and the sink finish their work
WARMUP = 2


def one(cmd: list[str], env: dict[str, str], pause: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    child = pexpect.spawn(cmd[0], cmd[1:], env=env, encoding="utf-8", timeout=10)
    child.expect_exact(">>> ")
    start = time.perf_counter() - t0
    time.sleep(pause)
    t1 = time.perf_counter()
    child.sendeof()
    child.expect(pexpect.EOF)
    took = time.perf_counter() - t1
    child.close()
    return start * 1000, took * 1000


def measure(env: dict[str, str], runs: int,
            baseline_src: str | None = None) -> dict[str, dict[str, list[float]]]:
    """{shell: {"start": [...], "exit quick": [...], "exit settled": [...]}} in ms."""
    shells = [("bare", BARE, env), ("shellspan", INSTRUMENTED, env)]
    if baseline_src:
        shells.append(("baseline", INSTRUMENTED, dict(env, PYTHONPATH=baseline_src)))
    out = {shell: {"start": [], **{f"exit {p}": [] for p in PAUSES}} for shell, _, _ in shells}
    for i in range(WARMUP + runs):
        for kind, pause in PAUSES.items():
            order = shells[i % len(shells):] + shells[:i % len(shells)]  # rotate who goes first
            for shell, cmd, shell_env in order:
                s, e = one(cmd, shell_env, pause)
                time.sleep(SETTLE_S)
                if i >= WARMUP:  # the warm-up runs fill the page and byte-code caches
                    out[shell]["start"].append(s)
                    out[shell][f"exit {kind}"].append(e)
    return out


def p90(v: list[float]) -> float:
    return sorted(v)[max(int(round(len(v) * 0.9)) - 1, 0)]


def report(collector: str, r: dict[str, dict[str, list[float]]]) -> list[tuple[str, float, bool]]:
    """Print one table; returns (case, added ms, floor met) per row."""
    rows = []
    n = len(r["bare"]["exit quick"])
    print(f"\n== collector {collector}  ({n} runs per shell and exit kind; start-up pooled: "
          f"{len(r['bare']['start'])}; ms, median / p90)")
    print(f"  {'case':<14} {'bare':>15} {'shellspan':>15} {'added':>9} {'ratio':>7} "
          f"{'floor':>7}  result")
    for case in r["bare"]:
        bare, inst = r["bare"][case], r["shellspan"][case]
        mb, mi = statistics.median(bare), statistics.median(inst)
        added = mi - mb
        floor = FLOOR_START_MS if case == "start" else FLOOR_EXIT_MS
        ok = added <= floor
        label = "start-up" if case == "start" else case
        print(f"  {label:<14} {mb:6.1f} / {p90(bare):6.1f} {mi:6.1f} / {p90(inst):6.1f} "
              f"{added:+8.1f} {mi / mb:6.2f}x {floor:+6.0f}  {'ok' if ok else 'FLOOR MISSED'}")
        rows.append((f"{label}, collector {collector}", added, ok))
    if "baseline" in r:
        print("  the same cases with the baseline code (--baseline-src), in the same rotation:")
        for case in r["bare"]:
            mb, ml = statistics.median(r["bare"][case]), statistics.median(r["baseline"][case])
            mi = statistics.median(r["shellspan"][case])
            label = "start-up" if case == "start" else case
            print(f"  {label:<14} baseline {ml:6.1f} / {p90(r['baseline'][case]):6.1f}"
                  f"  added {ml - mb:+6.1f}  (this code {mi - mb:+6.1f})")
    return rows


def wait_sessions(sink: SinkProcess, expected: int, timeout: float = 20.0) -> int:
    """Sessions the sink holds, waiting a little for the detached exit helpers to deliver."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(sink.sessions(limit=1000))
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--baseline-src", help="instrumentation/src of the code to compare with")
    args = ap.parse_args()
    print("$ " + shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])))
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} CPUs, cwd {os.getcwd()}")
    tmp = Path(tempfile.mkdtemp(prefix="shellspan-bench-"))
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "SHELLSPAN_", "PYTHONSTARTUP", "TRACE", "BAGGAGE"))
            and k != "PYTHONDONTWRITEBYTECODE"}
    base.update({"HOME": str(tmp), "TERM": "dumb", "SHELLSPAN_SPOOL_DIR": str(tmp / "spool"),
                 "PYTHONPYCACHEPREFIX": str(tmp / "pycache")})
    rows = []
    sink = SinkProcess(tmp / "sink").start()
    try:
        env = dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint)
        rows += report("up", measure(env, args.runs, args.baseline_src))
        expected = (WARMUP + args.runs) * len(PAUSES) * (2 if args.baseline_src else 1)
        print(f"  sessions stored by the sink: {wait_sessions(sink, expected)} of {expected}")
    finally:
        sink.stop()
    env = dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    rows += report("down", measure(env, args.runs, args.baseline_src))
    print("\n== summary (added by shellspan, median ms; floors +15 start-up, +100 exit)")
    for case, added, ok in rows:
        print(f"  {case:<34} {added:+7.1f}  {'ok' if ok else 'FLOOR MISSED'}")
    missed = [case for case, _, ok in rows if not ok]
    print("\nFLOOR MISSED: " + "; ".join(missed) if missed else "\nall floors met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
