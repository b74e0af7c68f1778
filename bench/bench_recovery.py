"""Recovery after a sink outage: from the sink reachable again to the shells' data stored.

    .venv/bin/python bench/bench_recovery.py [--outages 10,60,180]

One real sink, and two sessions open through the whole run: a `shellspan python` REPL and an
interactive bash with the hooks (its commands go through the per-user agent). For each outage
length: the sink is stopped (its ports then refuse connections); each shell types a command at
once and another half-way through the outage (both end up in the shell side's spool); after the
outage the sink starts again on the same ports and store. The moment its OTLP/HTTP port accepts
a connection is "back"; each shell then types one more command. Measured from "back":

* spooled: until both outage commands of the shell are stored (visible through the API);
* new: until the command typed after the sink came back is stored.

Side by side, in the same run: a control client that posts one span at "back" (retrying every
50 ms until accepted) and polls the API the same way, which is the sink's own time from start to
stored — the part of the figures the shell side cannot shorten.

Floor: at most 5 s for every shell, outage and measure. The exit status is 1 when it is missed.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pexpect

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.posix_shell_helpers import Shell, ShellEnv, rc_files
from shellspan_testing.python_shell_helpers import PROMPT, SHELLSPAN, shell_env
from shellspan_testing.sinkproc import SinkProcess

FLOOR_S = 5.0
POLL_S = 0.1
GIVE_UP_S = 400.0  # the old back-off reached 300 s: wait long enough to measure it


class PythonShell:
    kind = "python"

    def __init__(self, root: Path, endpoint: str) -> None:
        self.env = shell_env(root / "python", endpoint)
        # A Python shell's user.name comes from its uid; in this run's own sink no other
        # session has it (the bash shell and the control client have names of their own).
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.child = pexpect.spawn(SHELLSPAN, ["python", "-q"], env=self.env, encoding="utf-8",
                                   timeout=30, dimensions=(24, 200))
        self.child.expect_exact(PROMPT)

    def type(self, text: str) -> None:
        self.child.sendline(f"{text} = 1")
        self.child.expect_exact(PROMPT)

    def stored_text(self, text: str) -> str:
        return f"{text} = 1"

    def close(self) -> None:
        self.child.sendeof()
        self.child.expect(pexpect.EOF)
        self.child.close()


class BashShell:
    kind = "bash"

    def __init__(self, root: Path, endpoint: str) -> None:
        self.shell_env = ShellEnv(root / "bash", endpoint)
        self.user = self.shell_env.user
        self.shell = Shell(rc_files(self.shell_env, "bash"), self.shell_env.env, timeout=30)
        self.shell_env.wait_agent()

    def type(self, text: str) -> None:
        self.shell.run(f": {text}")

    def stored_text(self, text: str) -> str:
        return f": {text}"

    def close(self) -> None:
        self.shell.child.sendline("exit")
        self.shell.exit_status()
        self.shell_env.stop_agent()


def stored_commands(sink: SinkProcess, user: str) -> set[str]:
    found = sink.sessions(user=user, limit=10)
    if not found:
        return set()
    return {c["command"] for c in sink.session(found[0]["session_id"])["commands"]}


def wait_stored(sink: SinkProcess, user: str, texts: list[str], since: float,
                timeout: float = GIVE_UP_S) -> float | None:
    """Seconds from `since` (a time.monotonic()) until every text is stored; None if never."""
    return wait_all(sink, {"one": (user, texts)}, since, timeout)["one"]


def wait_all(sink: SinkProcess, targets: dict[str, tuple[str, list[str]]], since: float,
             timeout: float = GIVE_UP_S) -> dict[str, float | None]:
    """Poll every target (name -> (user, texts)) in one loop, so that no target waits for
    another to be measured; seconds from `since` until each was stored, None if never."""
    done: dict[str, float | None] = dict.fromkeys(targets)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(v is None for v in done.values()):
        users = {user for name, (user, _) in targets.items() if done[name] is None}
        try:
            stored = {user: stored_commands(sink, user) for user in users}
        except OSError:
            stored = {}
        now = time.monotonic()
        for name, (user, texts) in targets.items():
            if done[name] is None and set(texts) <= stored.get(user, set()):
                done[name] = now - since
        time.sleep(POLL_S)
    return done


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def restart(sink: SinkProcess) -> float:
    """Start the sink again; returns the time.monotonic() at which its OTLP port accepted."""
    back: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if port_open(sink.http_port):
                back.append(time.monotonic())
                return
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        sink.start(timeout=120)
    finally:
        t.join(5)
        stop.set()
    return back[0] if back else time.monotonic()


def control_client(sink: SinkProcess, back: float) -> tuple[str, list[str]]:
    """Start a client that posts one span from `back` on, retrying every 50 ms; returns the
    (user, texts) target to wait for."""
    spec = SessionSpec(user="control" + uuid.uuid4().hex[:6], shell_type="control",
                       ended=False, commands=[Command("control-command")])
    body = request_for(session_spans(spec)).SerializeToString()

    def send() -> None:
        while time.monotonic() - back < GIVE_UP_S:
            try:
                if post(sink.otlp_http_endpoint, body).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)

    threading.Thread(target=send, daemon=True).start()
    return spec.user, ["control-command"]


def fmt(x: float | None) -> str:
    return f"{x:7.2f}" if x is not None else "  never"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outages", default="10,60,180", help="outage lengths in seconds")
    args = ap.parse_args()
    outages = [float(x) for x in args.outages.split(",") if x]
    print("$ " + shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])))
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    root = Path(tempfile.mkdtemp(prefix="shellspan-bench-recovery-"))
    sink = SinkProcess(root / "sink").start()
    shells = [PythonShell(root, sink.otlp_http_endpoint), BashShell(root, sink.otlp_http_endpoint)]
    rows: list[tuple[float, str, float | None, float | None]] = []
    try:
        for sh in shells:  # both sessions are live and delivering before the first outage
            sh.type("warm_up")
            assert wait_stored(sink, sh.user, [sh.stored_text("warm_up")], time.monotonic(), 60)
        for n, outage in enumerate(outages):
            sink.stop()
            down = time.monotonic()
            texts = {sh.kind: [f"outage{n}_first", f"outage{n}_midway"] for sh in shells}
            for sh in shells:
                sh.type(texts[sh.kind][0])
            time.sleep(max(outage / 2 - (time.monotonic() - down), 0))
            for sh in shells:
                sh.type(texts[sh.kind][1])
            time.sleep(max(outage - (time.monotonic() - down), 0))
            back = restart(sink)
            targets = {"control client": control_client(sink, back)}
            for sh in shells:
                sh.type(f"outage{n}_after")
            for sh in shells:
                targets[f"{sh.kind} spooled"] = (sh.user,
                                                 [sh.stored_text(t) for t in texts[sh.kind]])
                targets[f"{sh.kind} new"] = (sh.user, [sh.stored_text(f"outage{n}_after")])
            took = wait_all(sink, targets, back)
            ctl = took["control client"]
            rows.append((outage, "control client", ctl, ctl))
            for sh in shells:
                rows.append((outage, sh.kind, took[f"{sh.kind} spooled"], took[f"{sh.kind} new"]))
            print(f"  outage {outage:.0f} s done", flush=True)
    finally:
        for sh in shells:
            try:
                sh.close()
            except Exception as exc:  # noqa: BLE001 - report, and still stop the sink
                print(f"  closing the {sh.kind} shell failed: {exc!r}")
        sink.stop()
    print(f"\n== seconds from the sink accepting connections again to the data stored "
          f"(floor {FLOOR_S:.0f} s)")
    print(f"  {'outage':>7}  {'shell':<15} {'spooled':>8} {'new':>8}  {'ratio to control':>17}"
          f"  result")
    missed = []
    ctl_by_outage = {o: c for o, k, c, _ in rows if k == "control client"}
    for outage, kind, spooled, new in rows:
        worst = None if spooled is None or new is None else max(spooled, new)
        ctl = ctl_by_outage.get(outage)
        ratio = f"{worst / ctl:16.1f}x" if worst is not None and ctl else f"{'-':>17}"
        ok = worst is not None and worst <= FLOOR_S
        if kind != "control client" and not ok:
            missed.append(f"{kind} after {outage:.0f} s")
        result = "" if kind == "control client" else ("ok" if ok else "FLOOR MISSED")
        print(f"  {outage:6.0f}s  {kind:<15} {fmt(spooled)} {fmt(new)}  {ratio}  {result}")
    print("\nFLOOR MISSED: " + "; ".join(missed) if missed else "\nfloor met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
