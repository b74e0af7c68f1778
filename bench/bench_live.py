"""How soon a followed session shows a new command: a real bash (pty, shellspan hooks, the real
agent) records into a real sink (default settings) while a client follows the session through
the sink's Server-Sent Events; the time from the shell's prompt returning to the command's event
arriving is taken for every command.

    .venv/bin/python bench/bench_live.py [--commands 20] [--pause 0.5] [--burst 200]
                                         [--windows 1000,200,0]

For each agent batch window (SHELLSPAN_AGENT_BATCH_MS), side by side in one run:

* latency: `--commands` commands typed at an interactive pace (`--pause` seconds after each
  prompt before the next line), prompt-to-event median, p90 and max;
* cost: a burst of `--burst` commands typed back to back (a paste, a loop of short commands):
  the agent's CPU time for it, and the time until the last of them reached the follower.

Floor: with the default window, every command of the latency part shows within 1 s of its
prompt. The exit status is 1 when it does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shellspan_testing.posix_shell_helpers import Shell, ShellEnv, rc_files, stored_shell_session
from shellspan_testing.sinkproc import SinkProcess
from shellspan_testing.sse import SseListener

FLOOR_S = 1.0
DEFAULT_WINDOW_MS = 200  # the agent's default SHELLSPAN_AGENT_BATCH_MS


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(sink: SinkProcess, root: Path, window_ms: int, commands: int, pause: float,
            burst: int) -> dict:
    env = ShellEnv(root / f"w{window_ms}", sink.otlp_http_endpoint,
                   SHELLSPAN_AGENT_BATCH_MS=str(window_ms))
    sh = Shell(rc_files(env, "bash"), env.env, timeout=120)
    sh.child.delaybeforesend = None
    try:
        agent = env.wait_agent()
        session_id = stored_shell_session(sh, sink)
        stream = SseListener(sink.api_port, f"/api/sessions/{session_id}/events")
        stream.next("session")
        stream.next("command")  # the command that told the session id
        delays = []
        for i in range(commands):
            time.sleep(pause)
            sh.run(f"echo live-{i}")
            prompt = time.perf_counter()
            arrived, event = stream.next_timed("command", timeout=60)
            assert event.data["command"] == f"echo live-{i}", event.data
            delays.append(arrived - prompt)
        time.sleep(pause)
        cpu_before = cpu_seconds(agent)
        started = time.perf_counter()
        for _ in range(burst):
            sh.run(":")
        typed = time.perf_counter()
        for _ in range(burst):
            arrived, _event = stream.next_timed("command", timeout=120)
        cpu = cpu_seconds(agent) - cpu_before
        stream.close()
        return {"window": window_ms, "delays": delays, "burst_cpu_ms": cpu * 1000,
                "burst_typed_s": typed - started, "burst_last_after_s": arrived - typed}
    finally:
        sh.close()
        env.stop_agent()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--windows", default="1000,200,0")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    with tempfile.TemporaryDirectory(prefix="shellspan-bench-live-") as tmp:
        sink = SinkProcess(Path(tmp) / "sink", env={"SHELLSPAN_WAL_SEGMENT_AGE": "0.5"}).start()
        try:
            results = [measure(sink, Path(tmp), w, args.commands, args.pause, args.burst)
                       for w in windows]
        finally:
            sink.stop()
    print(f"\nbash through the agent into the sink (WAL segment age 0.5 s, the default), "
          f"followed over SSE; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"latency: {args.commands} commands, {args.pause} s after each prompt "
          "(prompt returned -> event received, ms)")
    print(f"  {'window':>8} {'median':>8} {'p90':>8} {'max':>8}   burst of {args.burst}: "
          "agent CPU, typed in, last shown after")
    verdict = True
    for r in results:
        d = sorted(r["delays"])
        p90 = d[max(int(0.9 * len(d)) - 1, 0)]
        print(f"  {r['window']:>6}ms {statistics.median(d) * 1000:8.0f} {p90 * 1000:8.0f} "
              f"{d[-1] * 1000:8.0f}   {r['burst_cpu_ms']:7.0f} ms  {r['burst_typed_s']:6.1f} s "
              f"{r['burst_last_after_s'] * 1000:8.0f} ms")
        if r["window"] == DEFAULT_WINDOW_MS:
            verdict = d[-1] <= FLOOR_S
    if DEFAULT_WINDOW_MS in windows:
        print(f"\nfloor: every command shown within {FLOOR_S:.0f} s of its prompt with the default "
              f"window ({DEFAULT_WINDOW_MS} ms): {'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
