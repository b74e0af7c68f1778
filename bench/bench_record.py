"""What `shellspan record` costs the terminal it records, measured against a bare pty.

    .venv/bin/python bench/bench_record.py [--keys 3000] [--rounds 3] [--mb 200] [--runs 5]
                                           [--cpu-seconds 20] [--cpu-runs 3]
                                           [--only latency,throughput,cpu]

Everything runs with a real agent and a real sink (the recording is exported as it would be).

* Keystroke to echo: a harness owns a pty; in it runs either `cat` (bare) or
  `shellspan record -- cat` (or util-linux `script` running `cat`, for reference). It writes one
  byte and times until the echo comes back (the echo of the inner terminal, relayed by the
  recorder). One key to each in turn, the order rotating, in rounds;
  reported: median and p99 of each and the added p99 (recorded p99 - bare p99). Floor: added
  p99 <= 1 ms.
* Output throughput: `cat` of a file of --mb MB of text lines, bare, through the recorder and
  through util-linux `script` (a C pty relay that keeps nothing: what a second pty costs by
  itself), in turn, --runs each; the time from the first byte to the last the harness reads
  (start-up excluded). Measured with the default limits (beyond the rate the recorder drops and marks) and
  with SHELLSPAN_RECORD_ACTION=pass (everything handed to the agent, whose CPU then competes).
  Floor: recorded >= 80% of bare (medians, default limits).
* CPU and storage at 1 MB/s: a program prints typical shell output (`ls --color`, a compiler's
  diagnostics, `top` refreshing: real programs' output, see `typical_file`) at 1 MB/s through
  the recorder for --cpu-seconds; the CPU time of the recorder and of the agent over that
  time (from /proc), as a share of one core. This phase has a sink and an agent of its own; once
  the sink holds every byte the terminal showed, it is stopped and the recording table's size is
  read after merges: stored bytes against the raw output. Floors: recorder <= 5% of one core;
  recording table <= 25% of raw. The agent's CPU is reported.

Starting playback of a one-hour session (the API's first byte, the web player ready) and the
storage of synthesized sessions are measured by bench/bench_recordings.py.

The machine's load average is printed before and after; the exit status is 1 when a floor is
missed.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shellspan_testing.posix_shell_helpers import ShellEnv
from shellspan_testing.recordings import stored_sizes, typical_outputs
from shellspan_testing.sinkproc import SinkProcess, drained

SHELLSPAN = str(Path(sys.executable).with_name("shellspan"))
FLOOR_ADDED_P99_MS, FLOOR_THROUGHPUT, FLOOR_CPU, FLOOR_STORED = 1.0, 0.80, 0.05, 0.25
LINE = ("drwxr-xr-x  2 alice staff  4096 Mar  3 12:01 \x1b[01;34msrc\x1b[0m  "
        "-rw-r--r--  1 alice staff  1234 Mar  3 12:01 README.md\n")


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def spawn(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    return pid, fd


def drain(fd: int, quiet_s: float = 0.05) -> bytes:
    out = b""
    while select.select([fd], [], [], quiet_s)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def reap(pid: int, fd: int, timeout: float = 10.0) -> None:
    """Close a program's pty and wait for it to end (SIGKILL once `timeout` has passed)."""
    try:
        os.close(fd)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.01)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def child_of(pid: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise TimeoutError("no child")


# --- keystroke to echo ---------------------------------------------------------------------------

def echo_ms(fd: int) -> float:
    t0 = time.perf_counter_ns()
    os.write(fd, b"a")
    while True:
        select.select([fd], [], [])
        if os.read(fd, 256):
            return (time.perf_counter_ns() - t0) / 1e6


def latency(env: dict[str, str], keys: int, rounds: int) -> dict:
    """Echo times (ms) of `cat` bare, through the recorder and (when installed) through
    util-linux `script`, one key to each in turn, the order rotating."""
    cat, script = shutil.which("cat"), shutil.which("script")
    argvs = {"bare": [cat], "rec": [SHELLSPAN, "record", "--", cat]}
    if script:
        argvs["script"] = [script, "-q", "-c", cat, "/dev/null"]
    procs = {name: spawn(argv, env) for name, argv in argvs.items()}
    names = list(procs)
    got: dict[str, list[float]] = {name: [] for name in names}
    try:
        for _pid, fd in procs.values():  # started: the first line comes back
            os.write(fd, b"warm up\n")
            for _ in range(100):
                if b"warm up" in drain(fd, 0.3):
                    break
        per_round = keys // rounds
        for r in range(rounds):
            for i in range(per_round):
                k = (i + r) % len(names)
                for name in names[k:] + names[:k]:
                    got[name].append(echo_ms(procs[name][1]))
                if i % 60 == 59:  # end the line: cat prints it back
                    for _pid, fd in procs.values():
                        os.write(fd, b"\n")
                        drain(fd)
    finally:
        for pid, fd in procs.values():
            os.write(fd, b"\n\x04")  # end-of-file at the start of a line
            drain(fd, 0.2)
            reap(pid, fd)
    out = {"samples": len(got["bare"])}
    for name, xs in got.items():
        out[f"{name}_median"], out[f"{name}_p99"] = statistics.median(xs), p99(xs)
    out["added_median"] = out["rec_median"] - out["bare_median"]
    out["added_p99"] = out["rec_p99"] - out["bare_p99"]
    return out


# --- throughput ----------------------------------------------------------------------------------

def reads_to_end(fd: int) -> Iterator[bytes]:
    """What a pty gives until its program has closed it (EIO) or it ends."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        yield chunk


def read_all(argv: list[str], env: dict[str, str]) -> tuple[int, float]:
    """(bytes read, seconds from the first byte to the last) of a program in a new pty."""
    pid, fd = spawn(argv, env)
    n = 0
    first = last = 0.0
    for chunk in reads_to_end(fd):
        now = time.perf_counter()
        if not n:
            first = now
        last = now
        n += len(chunk)
    reap(pid, fd)
    return n, last - first


def throughput(env: dict[str, str], path: Path, runs: int) -> dict:
    """MB/s of `cat PATH` bare, through the recorder and (when installed) through util-linux
    `script`, a pty relay written in C that keeps nothing: the cost of a second pty alone."""
    cat, script = shutil.which("cat"), shutil.which("script")
    cases = [("bare", [cat, str(path)]), ("rec", [SHELLSPAN, "record", "--", cat, str(path)])]
    if script:
        cases.append(("script", [script, "-q", "-c", f"{cat} {path}", "/dev/null"]))
    got: dict[str, list[float]] = {name: [] for name, _argv in cases}
    for i in range(runs):
        for name, argv in cases[i % len(cases):] + cases[:i % len(cases)]:
            n, secs = read_all(argv, env)
            got[name].append(n / secs / 1e6)
    med = {name: statistics.median(xs) for name, xs in got.items()}
    return {"bare_mbs": med["bare"], "rec_mbs": med["rec"], "ratio": med["rec"] / med["bare"],
            "script_ratio": med["script"] / med["bare"] if script else None,
            "all": got}


# --- CPU and storage at 1 MB/s ------------------------------------------------------------------

GENERATOR = """
import os, sys, time
data = open(sys.argv[1], "rb").read()
end = time.monotonic() + float(sys.argv[2])
next_at = time.monotonic()
pos = int(sys.argv[3]) % len(data) // 10000 * 10000
while time.monotonic() < end:
    chunk = data[pos:pos + 10000] or data[:10000]
    pos = pos + 10000 if pos + 10000 < len(data) else 0
    os.write(1, chunk)
    next_at += len(chunk) / 1e6
    time.sleep(max(next_at - time.monotonic(), 0))
"""


LISTED = ("/usr", "/var", "/etc", "/opt", sys.prefix)


def typical_file(tmp: Path) -> Path:
    """Typical terminal output that does not repeat within megabytes (so the store cannot
    compress a loop): `ls -lR --color=always` of the system's trees, with a compiler's
    diagnostics or a `top` run after every megabyte (`typical_outputs`, captured in a pty); as
    the programs wrote it (the pty's output processing turns newlines back into CR LF)."""
    listing = subprocess.run(["ls", "-lR", "--color=always", *LISTED], capture_output=True,
                             env={**os.environ, "LC_ALL": "C.UTF-8"}).stdout
    others = [data.replace(b"\r\n", b"\n") for line, data in typical_outputs().items()
              if not line.startswith("ls")]
    path = tmp / "typical.bin"
    with open(path, "wb") as f:
        for i in range(0, len(listing), 1_000_000):
            f.write(listing[i:i + 1_000_000])
            f.write(others[(i // 1_000_000) % len(others)])
    return path


def cpu_at_1mbs(env: dict[str, str], seconds: float, agent_pid: int, tmp: Path,
                data: Path, offset: int) -> dict:
    gen = tmp / "gen.py"
    gen.write_text(GENERATOR)
    pid, fd = spawn([SHELLSPAN, "record", "--", sys.executable, str(gen), str(data),
                     str(seconds), str(offset)], env)
    got = 0
    try:
        while not got:
            got += len(os.read(fd, 65536))
        time.sleep(0.5)  # start-up done
        r0, a0, t0 = cpu_ticks(pid), cpu_ticks(agent_pid), time.monotonic()
        w0 = got
        while time.monotonic() - t0 < seconds - 2:
            got += len(os.read(fd, 65536))
        r1, a1, t1 = cpu_ticks(pid), cpu_ticks(agent_pid), time.monotonic()
        rate = (got - w0) / (t1 - t0)
        got += sum(len(chunk) for chunk in reads_to_end(fd))
    finally:
        reap(pid, fd)
    tick = os.sysconf("SC_CLK_TCK")
    return {"recorder": (r1 - r0) / tick / (t1 - t0), "agent": (a1 - a0) / tick / (t1 - t0),
            "rate_mbs": rate / 1e6, "bytes": got}


def recorded_bytes(sink: SinkProcess) -> int:
    rows = sink.sql("SELECT sum(length(data)) FROM shellspan.shell_recordings "
                    "WHERE event = 'o'")["rows"]
    return int(rows[0][0] or 0)


def cpu_and_storage(tmp: Path, seconds: float, runs: int) -> tuple[list[dict], dict]:
    """The CPU runs with a sink and agent of their own; then what the sink stored."""
    sink = SinkProcess(tmp / "sink-cpu").start()
    shell = ShellEnv(tmp / "cpu", sink.otlp_http_endpoint)
    env = dict(shell.env, TERM="xterm")
    data = typical_file(tmp)
    try:
        agent = start_agent(shell, env)
        cpus = [cpu_at_1mbs(env, seconds, agent, tmp, data, int(i * seconds * 1e6))
                for i in range(runs)]  # each run prints output the others did not
        shown = sum(c["bytes"] for c in cpus)
        # 1 MB/s is within the default rate, so every byte shown is recorded: wait for all.
        sink.wait_for(lambda: recorded_bytes(sink) >= shown, timeout=300, interval=1.0)
        drained(sink)
    finally:
        shell.stop_agent()
        sink.stop()
    return cpus, stored_sizes(sink)


def start_agent(shell: ShellEnv, env: dict[str, str]) -> int:
    """The agent, started by a first recording, so every measurement hands chunks to a running
    one; its pid."""
    pid, fd = spawn([SHELLSPAN, "record", "--", "/bin/true"], env)
    drain(fd, 0.5)
    reap(pid, fd)
    return shell.wait_agent()


def text_file(path: Path, mb: int) -> None:
    with open(path, "w") as f:
        plain = "".join(f"{i:08d} " + "The quick brown fox jumps over the lazy dog. " * 2
                        + "\n" for i in range(1000))
        for _ in range(mb * 1_000_000 // len(plain)):
            f.write(plain)


def report_latency(env: dict[str, str], args: argparse.Namespace, failed: list[str]) -> None:
    lat = latency(env, args.keys, args.rounds)
    print(f"keystroke to echo ({lat['samples']} each, alternating): bare median "
          f"{lat['bare_median']:.3f} ms p99 {lat['bare_p99']:.3f} ms; recorded median "
          f"{lat['rec_median']:.3f} ms p99 {lat['rec_p99']:.3f} ms; added median "
          f"{lat['added_median']:.3f} ms, added p99 {lat['added_p99']:.3f} ms "
          f"(floor {FLOOR_ADDED_P99_MS} ms)"
          + (f"; util-linux script median {lat['script_median']:.3f} ms p99 "
             f"{lat['script_p99']:.3f} ms, added p99 {lat['script_p99'] - lat['bare_p99']:.3f} ms"
             if "script_p99" in lat else ""), flush=True)
    if lat["added_p99"] > FLOOR_ADDED_P99_MS:
        failed.append("keystroke p99")


def report_throughput(env: dict[str, str], args: argparse.Namespace, tmp: Path,
                      failed: list[str]) -> None:
    path = tmp / "big.txt"
    text_file(path, args.mb)
    for label, extra in (("default limits", {}),
                         ("SHELLSPAN_RECORD_ACTION=pass", {"SHELLSPAN_RECORD_ACTION": "pass"})):
        t = throughput({**env, **extra}, path, args.runs)
        print(f"cat of {args.mb} MB ({label}, {args.runs} runs each, medians): bare "
              f"{t['bare_mbs']:.1f} MB/s, recorded {t['rec_mbs']:.1f} MB/s, ratio "
              f"{t['ratio']:.2f} (floor {FLOOR_THROUGHPUT} with the default limits); "
              + (f"util-linux script / bare {t['script_ratio']:.2f}; "
                 if t["script_ratio"] is not None else "")
              + "MB/s each run: " + ", ".join(f"{name} {[round(x) for x in xs]}"
                                              for name, xs in t["all"].items()), flush=True)
        if not extra and t["ratio"] < FLOOR_THROUGHPUT:
            failed.append("throughput")
    path.unlink()


def report_cpu(args: argparse.Namespace, tmp: Path, failed: list[str]) -> None:
    cpus, sizes = cpu_and_storage(tmp, args.cpu_seconds, args.cpu_runs)
    rec = statistics.median(c["recorder"] for c in cpus)
    agent_cpu = statistics.median(c["agent"] for c in cpus)
    print(f"CPU at {statistics.median(c['rate_mbs'] for c in cpus):.2f} MB/s of typical "
          f"output ({args.cpu_runs} runs of {args.cpu_seconds:.0f} s, medians): recorder "
          f"{rec * 100:.1f}% of one core (floor {FLOOR_CPU * 100:.0f}%), agent "
          f"{agent_cpu * 100:.1f}% (redaction, encoding, export); runs: "
          f"{[(round(c['recorder'] * 100, 1), round(c['agent'] * 100, 1)) for c in cpus]}",
          flush=True)
    if rec > FLOOR_CPU:
        failed.append("recorder CPU")
    raw = sizes["raw"]
    stored = sizes["recordings"] / raw
    print(f"stored: {raw / 1e6:.1f} MB of output recorded; recording table on disk "
          f"{sizes['recordings']:,} bytes = {stored:.1%} of raw (floor {FLOOR_STORED:.0%}); "
          f"its payload column {sizes['payload'] / raw:.1%}; the contrib-shaped otel_logs "
          f"beside it {sizes['otel_logs'] / raw:.1%}", flush=True)
    if stored > FLOOR_STORED:
        failed.append("stored bytes")


PHASES = ("latency", "throughput", "cpu")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--cpu-runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(PHASES),
                        help="comma-separated phases: " + ", ".join(PHASES))
    args = parser.parse_args()
    phases = [p for p in args.only.split(",") if p]
    if set(phases) - set(PHASES):
        parser.error(f"--only: phases are {', '.join(PHASES)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-record-"))
    failed: list[str] = []
    try:
        print(f"load average before: {os.getloadavg()}", flush=True)
        if "latency" in phases or "throughput" in phases:
            sink = SinkProcess(tmp / "sink").start()
            shell = ShellEnv(tmp, sink.otlp_http_endpoint)
            env = dict(shell.env, TERM="xterm")
            try:
                start_agent(shell, env)
                if "latency" in phases:
                    report_latency(env, args, failed)
                if "throughput" in phases:
                    report_throughput(env, args, tmp, failed)
            finally:
                shell.stop_agent()  # what they recorded is not measured: a new sink follows
                sink.stop()
        if "cpu" in phases:
            report_cpu(args, tmp, failed)
        print(f"load average after: {os.getloadavg()}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("floors missed: " + ", ".join(failed) if failed else "all floors met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
