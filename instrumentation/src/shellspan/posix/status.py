"""The bash/zsh part of ``shellspan status`` and ``shellspan doctor``: the hook in this shell,
the agent, where spans go, and the spool."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from shellspan.config import Config
from shellspan.posix import daemon, runtime
from shellspan.posix import state as state_file
from shellspan.posix.runtime import path

LABEL = 13  # width of the "name:" column
SESSION_WAIT_S = 2.0


def _knows(state: dict[str, Any], sid: str) -> bool:
    return any(s.get("session_id") == sid for s in state.get("sessions", []))


def _line(name: str, text: str) -> None:
    print(f"{name + ':':<{LABEL}}{text}")


def _hook_line(sid: str, state: dict[str, Any], agent_pid: int | None,
               problems: list[str]) -> None:
    shell_pid = os.getppid()
    mine = [s for s in state.get("sessions", []) if s.get("session_id") == sid]
    if not sid:
        _line("hook", "not active in this shell (add `eval \"$(shellspan init bash)\"` or "
                      "the zsh equivalent to your rc file)")
    elif mine and int(mine[0].get("pid", 0)) == shell_pid:
        s = mine[0]
        _line("hook", f"active in this {s.get('shell')} (pid {shell_pid}, session {sid}, "
                      f"{s.get('commands', 0)} commands)")
    elif mine:
        _line("hook", f"active in the parent shell (pid {mine[0].get('pid')}, session {sid});"
                      " this process's parent is not that shell")
    else:
        _line("hook", f"session {sid} is not known to the agent (the agent reads its journal"
                      " once it is up)")
        if agent_pid is not None:
            problems.append("the agent does not know this session yet")


def print_status(doctor: bool = False, env: Mapping[str, str] | None = None) -> int:
    """Print the status; with ``doctor`` also the agent log's end and the problems found
    (exit status 1 if any)."""
    env = dict(os.environ if env is None else env)
    choice = runtime.choose(env)
    d = choice.path
    problems: list[str] = []
    if choice.refused:
        problems.append(f"the runtime directory {choice.wanted} is refused: it {choice.refused}"
                        + (f"; {d} is used instead" if d else "; nothing is recorded"))
    pid = daemon.read_pid(d) if d else None
    state = state_file.read(d) if d else {}
    sid = env.get("SHELLSPAN_SESSION_ID", "")
    if sid and pid is not None and not _knows(state, sid):
        # The agent may be reading this shell's first records right now (it was just started,
        # or the command running this is the first it hears of): give it a moment.
        deadline = time.monotonic() + SESSION_WAIT_S
        while time.monotonic() < deadline and not _knows(state, sid):
            time.sleep(0.05)
            state = state_file.read(d)
    _line("runtime dir", (d or "none usable")
          + (f" ({choice.wanted} refused: it {choice.refused})" if choice.refused else ""))
    _hook_line(sid, state, pid, problems)
    if pid is None:
        _line("agent", "not running (it starts with the next interactive shell; "
                       "`shellspan agent --daemon` starts it now)")
        problems.append("agent not running")
    else:
        age = time.time() - float(state.get("updated", 0) or 0)
        _line("agent", f"running (pid {pid}, {len(state.get('sessions', []))} live sessions,"
                       f" state updated {age:.0f}s ago)")
    config = Config(env)
    _line("export to", state.get("endpoint") or config.endpoint)
    spool_dir = state.get("spool_dir") or config.spool_dir
    from shellspan.spool import Spool

    n, size = Spool(spool_dir).size()
    _line("spooled", f"{n} requests ({size} bytes) in {spool_dir}")
    last = float(state.get("last_export_ok", 0) or 0)
    if last:
        _line("last export", f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last))}"
                             f" ({time.time() - last:.0f}s ago)")
    else:
        _line("last export", "none by this agent yet")
    if state.get("last_error"):
        _line("last error", state["last_error"])
    if n and pid is not None and state.get("breaker_open"):
        problems.append("the endpoint is failing; spans are being spooled")
    if doctor:
        log = path(daemon.LOG_FILE, d) if d else ""
        if log and os.path.exists(log):
            with open(log, errors="replace") as f:
                tail = f.readlines()[-5:]
            _line("agent log", (" " * LABEL).join(tail).rstrip())
        _line("problems", "; ".join(problems) if problems else "none found")
        return 1 if problems else 0
    return 0
