"""The agent's state file (``state.json`` in the runtime directory).

Written by the agent whenever its sessions change (and every few seconds): the live sessions,
how far each journal file has been read, and the export status. ``shellspan status`` reads it,
and an agent that starts after another one stopped or crashed takes over the sessions listed
in it and goes on reading where it stopped.
"""

from __future__ import annotations

import json
import time
from typing import Any

from shellspan.files import replace_file
from shellspan.otlp import Link
from shellspan.posix import records
from shellspan.posix.runtime import path
from shellspan.posix.sessions import ShellSession

STATE_FILE = "state.json"


def session_entry(s: ShellSession) -> dict[str, Any]:
    return {"session_id": s.sid, "pid": s.pid, "shell": s.shell, "start_ns": s.start_ns,
            "root": s.root.hex(), "proc_start": s.proc_start, "commands": s.command_count,
            "failed": s.failed_count, "cwd": s.cwd, "tty": s.tty, "attributes": s.attributes,
            "links": [[link.trace_id.hex(), link.span_id.hex()] for link in s.links],
            "last_seen": s.last_seen,
            # the command running now: its end record may reach the next agent
            "pending": records.encode(s.pending).decode() if s.pending else None}


def session_from_entry(entry: dict[str, Any]) -> ShellSession | None:
    try:
        sess = ShellSession(entry["session_id"], int(entry["pid"]), entry["shell"],
                            int(entry["start_ns"]), bytes.fromhex(entry["root"]))
        sess.proc_start = entry.get("proc_start")
        sess.command_count = int(entry.get("commands", 0))
        sess.failed_count = int(entry.get("failed", 0))
    except (KeyError, ValueError, TypeError):
        return None
    sess.cwd, sess.tty = entry.get("cwd", ""), entry.get("tty", "")
    sess.attributes = entry.get("attributes", {})
    try:
        sess.links = [Link(bytes.fromhex(t), bytes.fromhex(s)) for t, s in entry.get("links", [])]
        pending = records.parse(entry["pending"].rstrip("\0")) if entry.get("pending") else None
    except (ValueError, TypeError, records.RecordError):
        pending = None
    sess.pending = pending if isinstance(pending, records.Begin) else None
    return sess


def write(directory: str, state: dict[str, Any]) -> None:
    """Replace the state file (written aside and renamed; raises OSError)."""
    replace_file(path(STATE_FILE, directory), json.dumps(dict(state, updated=time.time())).encode())


def read(directory: str) -> dict[str, Any]:
    """The last state written, {} if there is none or it cannot be read."""
    try:
        with open(path(STATE_FILE, directory)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sessions(state: dict[str, Any]) -> list[ShellSession]:
    """The live sessions a state lists."""
    out = []
    for entry in state.get("sessions", []):
        sess = session_from_entry(entry) if isinstance(entry, dict) else None
        if sess is not None:
            out.append(sess)
    return out


def offsets(state: dict[str, Any]) -> dict[str, int]:
    """Where the agent that wrote ``state`` had read each journal file to."""
    found = state.get("journals")
    if not isinstance(found, dict):
        return {}
    return {n: v for n, v in found.items() if isinstance(n, str) and isinstance(v, int) and v >= 0}
