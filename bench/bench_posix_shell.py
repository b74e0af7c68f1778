"""Added per-command latency and start-up time of the bash/zsh hooks, measured through a pty.

    .venv/bin/python bench/bench_posix_shell.py [--commands 1000] [--starts 30] [--shells bash,zsh]

For each shell, a plain interactive shell and an instrumented one (its rc file sources the
output of `shellspan init SHELL`, as docs/posix-shells.md recommends) run side by side in the
same run, and commands alternate between them: a command is typed (`:`, a no-op builtin, so the
hook is what differs) and the time until the next prompt appears on the terminal is taken. The
added latency is the instrumented shell's median (and p99) minus the plain shell's. Three
conditions are measured: agent and collector (a real sink) up; collector down (a closed port:
the agent spools); agent down (not running, autostart off).

Start-up: spawn to first prompt, plain and instrumented alternating, agent already running;
also reported (for information, no floor) for `eval "$(shellspan init SHELL)"` in the rc file,
which runs a Python process at every shell start.

Two figures explain the latency: the CPU time the shell itself spent per command (from
/proc/PID/schedstat, where available), and how often the reply (echo and next prompt) reached
the harness in one read. pexpect wakes up for the echo of the line; a shell that writes its
prompt before that wake-up is handled costs one read, one that writes it later costs a second
read and wake-up (about 0.15-0.2 ms here), so the wall-clock figures are bimodal and the added
median jumps with the share of single reads, not in proportion to the hooks' work.

With an agent running, the run also checks that the agent read every timed command (two
records each, from its state file): a figure measured while the hooks skipped their work would
mean nothing.

Floors: added median <= 0.1 ms and added p99 <= 0.5 ms per command in every condition, every
command received, added start-up <= 10 ms (median). The exit status is 1 when a floor is
missed, else 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect

from shellspan_testing.posix_shell_helpers import PROMPT, ShellEnv, hook_file, rc_files
from shellspan_testing.sinkproc import SinkProcess, free_port

FLOOR_MEDIAN_MS, FLOOR_P99_MS, FLOOR_START_MS = 0.1, 0.5, 10.0
WARM_UP = 50


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def spawn(argv: list[str], env: dict[str, str]) -> pexpect.spawn:
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=20,
                          dimensions=(40, 200))
    child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
    child.expect_exact(PROMPT)
    read = child.read_nonblocking
    child.reads = 0  # reads from the pty since the last timed command

    def counted(*args, **kwargs):
        child.reads += 1
        return read(*args, **kwargs)

    child.read_nonblocking = counted
    return child


def timed(child: pexpect.spawn, line: str = ":") -> float:
    child.reads = 0
    t0 = time.perf_counter()
    child.sendline(line)
    child.expect_exact(PROMPT)
    took = (time.perf_counter() - t0) * 1000
    child.single_reads = getattr(child, "single_reads", 0) + (child.reads == 1)
    return took


def cpu_us(pid: int) -> float | None:
    """CPU time the process has used so far (µs), from /proc/PID/schedstat."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1000
    except (OSError, ValueError, IndexError):
        return None


def per_command(shell: str, root: Path, endpoint: str, n: int, **extra: str) -> dict:
    plain_env = ShellEnv(root / "plain", endpoint)
    inst_env = ShellEnv(root / "inst", endpoint, runtime=rt(root / "inst"), **extra)
    plain = spawn(rc_files(plain_env, shell, instrumented=False), plain_env.env)
    inst = spawn(rc_files(inst_env, shell), inst_env.env)
    try:
        if extra.get("SHELLSPAN_AGENT_AUTOSTART") != "0":
            inst_env.wait_agent()
        for _ in range(WARM_UP):
            timed(plain)
            timed(inst)
        a: list[float] = []
        b: list[float] = []
        cpu0 = [cpu_us(c.pid) for c in (plain, inst)]
        plain.single_reads = inst.single_reads = 0
        for i in range(n):
            if i % 2:
                a.append(timed(plain))
                b.append(timed(inst))
            else:
                b.append(timed(inst))
                a.append(timed(plain))
        cpu = [None if t is None else (cpu_us(c.pid) - t) / n
               for c, t in zip((plain, inst), cpu0)]
        single = [c.single_reads / n * 100 for c in (plain, inst)]
        agent_up = inst_env.agent_pid() is not None
        received = None
        if agent_up:  # a start record, then a begin and an end record per command
            want = 1 + 2 * (WARM_UP + n)
            try:
                inst_env.wait_state(lambda st: st.get("records", 0) >= want, timeout=30)
            except TimeoutError:
                pass
            received = inst_env.state().get("records", 0) >= want
    finally:
        for c in (plain, inst):
            c.sendline("exit")
            c.expect(pexpect.EOF)
            c.close()
        time.sleep(0.5)
        inst_env.stop_agent()
    return {"plain_median": statistics.median(a), "inst_median": statistics.median(b),
            "plain_p99": p99(a), "inst_p99": p99(b),
            "added_median": statistics.median(b) - statistics.median(a),
            "added_p99": p99(b) - p99(a), "agent_up": agent_up, "received": received,
            "cpu": cpu, "single": single}


HOOK_LOOP = {
    # The hook work of one command, called directly in a loop inside the instrumented shell:
    # low-noise CPU cost of the hooks (the pty figures above include scheduling noise).
    # (bash: the DEBUG trap is taken off for the loop, or it would run at each of its commands)
    "bash": ('trap - DEBUG; __d=(); for ((__i = 0; __i < {n}; __i++)); do history -s "echo $__i"; '
             '__a=${{EPOCHREALTIME/[.,]/}}; __shellspan_t0=$__a; __shellspan_armed=1; '
             '__shellspan_hnum=0; '  # the line entered the history, as a typed one does
             '__shellspan_begin; __shellspan_precmd; '
             '__b=${{EPOCHREALTIME/[.,]/}}; __d+=($((__b - __a))); done; '
             'printf "%s\\n" "${{__d[@]}}" > {out}'),
    "zsh": ('__d=(); for ((__i = 0; __i < {n}; __i++)); do __a=${{EPOCHREALTIME/[.,]/}}; '
            '__shellspan_preexec "echo $__i"; __shellspan_precmd; '
            '__b=${{EPOCHREALTIME/[.,]/}}; __d+=($(( (__b - __a) / 1000 ))); done; '
            'printf "%s\\n" "${{__d[@]}}" > {out}'),
}


def runtime_base() -> Path | None:
    """Runtime directories on tmpfs, as XDG_RUNTIME_DIR is on most systems."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="shellspan-bench-rt-", dir=shm))
    return None


def rt(root: Path) -> Path | None:
    base = RUNTIME_BASE
    return base / root.relative_to(root.anchor).as_posix().replace("/", "_") if base else None


RUNTIME_BASE: Path | None = None


def hook_cost(shell: str, root: Path, endpoint: str, n: int) -> dict:
    env = ShellEnv(root / "hookcost", endpoint, runtime=rt(root / "hookcost"))
    child = spawn(rc_files(env, shell), env.env)
    out = root / "hookcost" / "durations.txt"
    try:
        env.wait_agent()
        child.sendline(HOOK_LOOP[shell].format(n=n, out=out))
        child.expect_exact(PROMPT, timeout=120)
        xs = [int(x) / 1000 for x in out.read_text().split()]
    finally:
        child.sendline("exit")
        child.expect(pexpect.EOF)
        child.close()
        time.sleep(0.5)
        env.stop_agent()
    return {"median": statistics.median(xs), "p99": p99(xs)}


def startup(shell: str, root: Path, endpoint: str, runs: int) -> dict:
    env = ShellEnv(root / "start", endpoint, runtime=rt(root / "start"))
    plain_obj = ShellEnv(root / "start-plain", endpoint)
    plain_argv = rc_files(plain_obj, shell, instrumented=False)
    plain_env = plain_obj.env
    inst_argv = rc_files(env, shell)
    inst_env = dict(env.env)
    eval_root = root / "start-eval"
    eval_env = ShellEnv(eval_root, endpoint)
    eval_env.runtime = env.runtime
    eval_env.env["SHELLSPAN_RUNTIME_DIR"] = str(env.runtime)
    hook = hook_file(env.root, shell)
    eval_argv = rc_files(eval_env, shell, instrumented=False,
                         after=f'eval "$(shellspan init {shell})"\n')
    assert hook.exists()
    # Start the agent once (the first instrumented shell does it) and leave it running.
    c = spawn(inst_argv, inst_env)
    env.wait_agent()
    c.sendline("exit")
    c.expect(pexpect.EOF)
    c.close()

    def one(argv: list[str], e: dict[str, str]) -> float:
        t0 = time.perf_counter()
        ch = pexpect.spawn(argv[0], argv[1:], env=e, encoding="utf-8", timeout=20)
        ch.delaybeforesend = None
        ch.expect_exact(PROMPT)
        took = (time.perf_counter() - t0) * 1000
        ch.sendline("exit")
        ch.expect(pexpect.EOF)
        ch.close()
        return took

    plain, inst, ev = [], [], []
    try:
        for _ in range(3):
            one(plain_argv, plain_env)
            one(inst_argv, inst_env)
        for i in range(runs):
            order = [(plain, plain_argv, plain_env), (inst, inst_argv, inst_env),
                     (ev, eval_argv, eval_env.env)]
            if i % 2:
                order.reverse()
            for sink_list, argv, e in order:
                sink_list.append(one(argv, e))
    finally:
        env.stop_agent()
    return {"plain": statistics.median(plain), "inst": statistics.median(inst),
            "eval": statistics.median(ev),
            "added": statistics.median(inst) - statistics.median(plain),
            "added_eval": statistics.median(ev) - statistics.median(plain)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=1000)
    ap.add_argument("--starts", type=int, default=30)
    ap.add_argument("--shells", default="bash,zsh")
    ap.add_argument("--runtime-on-disk", action="store_true",
                    help="keep the agent's runtime directory on disk instead of /dev/shm")
    args = ap.parse_args()
    shells = [s for s in args.shells.split(",") if s]
    ok = True
    global RUNTIME_BASE
    RUNTIME_BASE = None if args.runtime_on_disk else runtime_base()
    print(f"runtime directories in {RUNTIME_BASE or 'the temporary directory (disk)'}")
    with tempfile.TemporaryDirectory(prefix="shellspan-bench-") as tmp:
        root = Path(tmp)
        sink = SinkProcess(root / "sink").start()
        dead = f"http://127.0.0.1:{free_port()}"
        try:
            for shell in shells:
                if shutil.which(shell) is None:
                    print(f"{shell}: not installed, skipped")
                    continue
                conditions = {
                    "agent+collector up": (sink.otlp_http_endpoint, {}),
                    "collector down": (dead, {}),
                    "agent down": (sink.otlp_http_endpoint, {"SHELLSPAN_AGENT_AUTOSTART": "0"}),
                }
                print(f"\n{shell}: {args.commands} commands per shell and condition "
                      "(`:` typed, until the next prompt)")
                for name, (endpoint, extra) in conditions.items():
                    r = per_command(shell, root / shell / name.replace(" ", "_"), endpoint,
                                    args.commands, **extra)
                    miss = (r["added_median"] > FLOOR_MEDIAN_MS or r["added_p99"] > FLOOR_P99_MS
                            or r["received"] is False)
                    ok &= not miss
                    print(f"  {name:20s} plain median {r['plain_median']:.3f} ms p99 "
                          f"{r['plain_p99']:.3f} | instrumented median {r['inst_median']:.3f} ms"
                          f" p99 {r['inst_p99']:.3f} | added median {r['added_median']:+.3f} ms"
                          f" p99 {r['added_p99']:+.3f} ms (agent running: {r['agent_up']}"
                          + ("" if r["received"] is None else
                             f", received every command: {r['received']}") + ")"
                          f"{'  FLOOR MISSED' if miss else ''}")
                    cp, ci = r["cpu"]
                    cpu = ("" if cp is None or ci is None else
                           f"shell CPU per command: plain {cp:.0f} µs, instrumented {ci:.0f} µs"
                           f" (added {ci - cp:+.0f} µs); ")
                    print(f"  {'':20s} {cpu}reply in one read: plain {r['single'][0]:.0f}%, "
                          f"instrumented {r['single'][1]:.0f}%")
                h = hook_cost(shell, root / shell, sink.otlp_http_endpoint, args.commands)
                print(f"  hook functions called in a loop inside the shell (agent and collector up):"
                      f" median {h['median']:.3f} ms, p99 {h['p99']:.3f} ms per command")
                s = startup(shell, root / shell / "startup", sink.otlp_http_endpoint, args.starts)
                miss = s["added"] > FLOOR_START_MS
                ok &= not miss
                print(f"  start-up (median of {args.starts}): plain {s['plain']:.1f} ms, "
                      f"sourced hook file {s['inst']:.1f} ms (added {s['added']:+.1f} ms)"
                      f"{'  FLOOR MISSED' if miss else ''}; "
                      f"eval \"$(shellspan init {shell})\" {s['eval']:.1f} ms "
                      f"(added {s['added_eval']:+.1f} ms, no floor)")
        finally:
            sink.stop()
            if RUNTIME_BASE is not None:
                shutil.rmtree(RUNTIME_BASE, ignore_errors=True)
    print(f"\nfloors: added median <= {FLOOR_MEDIAN_MS} ms, p99 <= {FLOOR_P99_MS} ms per command, "
          f"start-up <= {FLOOR_START_MS} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
