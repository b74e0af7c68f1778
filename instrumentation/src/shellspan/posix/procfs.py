"""What the agent reads about processes from /proc (Linux). Every function answers "unknown"
(None, "" or 0) rather than raising when a process is gone or /proc is missing."""

from __future__ import annotations

import os

from shellspan.spool import pid_alive as _signal_alive

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process, or None."""
    rest = _fields(pid)
    try:
        return rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None


def boot_time() -> float:
    """When the system booted (seconds since the epoch), 0.0 if unknown."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def start_time_ns(pid: int, boot: float) -> int | None:
    """When a process started (ns since the epoch), from its start time in ticks."""
    st = stat(pid)
    if st is None or not boot:
        return None
    return int((boot + st[1] / CLK_TCK) * 1e9)


def tty_of(pid: int) -> str:
    """The terminal on the process's stdin, stdout or stderr, "" if none."""
    for fd in (0, 1, 2):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/") and not target.startswith("/dev/null"):
            return target
    return ""


def comm(pid: int) -> str:
    """The process's command name (a login shell's leading ``-`` removed)."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip().lstrip("-")
    except OSError:
        return ""


def _fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after "pid (comm) ": state, ppid, pgrp, session, tty..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return []
    return data[data.rfind(")") + 2:].split()


def ppid(pid: int) -> int:
    """The parent's pid, 0 if unknown."""
    fields = _fields(pid)
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def ancestors(pid: int, limit: int) -> tuple[tuple[int, str], ...]:
    """The processes above ``pid`` on its terminal, nearest first, each with the TRACEPARENT
    it was started with ("" if none or unreadable), up to the first that has one: the rule
    the hooks follow when a shell starts."""
    own = _fields(pid)
    if len(own) < 5:
        return ()
    tty, current, out = own[4], int(own[1]), []
    while len(out) < limit and current > 1:
        fields = _fields(current)
        if len(fields) < 5 or fields[4] != tty or tty == "0":
            break
        traceparent = environ(current).get("TRACEPARENT", "")
        out.append((current, traceparent))
        if traceparent:
            break
        current = int(fields[1])
    return tuple(out)


def environ(pid: int) -> dict[str, str]:
    """The environment a process was started with ({} if it cannot be read: another user's
    process, a set-uid one)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return {}
    out = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Alive and not a zombie (a shell killed with -9 stays a zombie until reaped)."""
    st = stat(pid)
    if st is not None:
        return st[0] not in ("Z", "X")
    if os.path.isdir("/proc/self"):
        return False
    return _signal_alive(pid)
