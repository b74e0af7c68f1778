"""`shellspan-sink sessions export|replay|screen`: terminal recordings from the command line.

They read the same asciicast stream and screens as the API (``recording_routes``): through the
running sink, or straight from a ClickHouse server given with ``--store``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import termios
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from .asciicast import MEDIA_TYPE
from .recordings import NotFound, RecordingQueries

# What a replay leaves behind whatever the recording did: attributes reset, cursor shown, the
# normal screen, no scroll region, normal cursor keys and keypad.
RESTORE_TERMINAL = "\x1b[0m\x1b[?25h\x1b[?1049l\x1b[r\x1b[?1l\x1b>\r\n"


def _lines(backend, session_id: str, params: dict[str, Any]) -> Iterator[str]:
    """The asciicast's lines, as they arrive."""
    if backend.queries is not None:
        stream = RecordingQueries(backend.queries.store).asciicast(
            session_id, params.get("from_seq"), params.get("from"))
        for chunk in stream:
            yield from chunk.splitlines()
        return
    for raw in backend.stream(f"/api/sessions/{session_id}/recording", params):
        yield raw.decode("utf-8").rstrip("\n")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return {"from_seq": args.from_seq, "from": getattr(args, "from_time", None)}


def cmd_export(args: argparse.Namespace, backend) -> int:
    out: IO[str] = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        count = 0
        for line in _lines(backend, args.session_id, _params(args)):
            out.write(line + "\n")
            count += 1
    except NotFound as exc:
        print(f"shellspan-sink: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.output:
            out.close()
    if count == 0:
        print(f"shellspan-sink: session {args.session_id} has no recording", file=sys.stderr)
        return 1
    if args.output:
        print(f"wrote {args.output} ({MEDIA_TYPE}, {count - 1} events)", file=sys.stderr)
    return 0


def play(lines: Iterator[str], write: Callable[[str], None], *, speed: float = 1.0,
         idle_limit: float | None = 2.0, sleep: Callable[[float], None] = time.sleep) -> int:
    """Write the output events of an asciicast at their pace (pauses longer than `idle_limit`
    shortened to it); returns how many were written."""
    header = json.loads(next(lines, "null") or "null")
    if not isinstance(header, dict) or header.get("version") != 2:
        raise ValueError("not an asciicast v2 recording")
    last, written = 0.0, 0
    for line in lines:
        if not line.strip():
            continue
        t, code, data = json.loads(line)
        delay = max(0.0, t - last)
        if idle_limit:
            delay = min(delay, idle_limit)
        last = t
        if delay > 0:  # time passes for input, resizes and markers too
            sleep(delay / speed)
        if code == "o":
            write(data)
            written += 1
    return written


@contextlib.contextmanager
def _quiet_terminal(fd: int):
    """Keys typed during the replay are not echoed into it; the terminal is restored after,
    also on Ctrl-C."""
    saved = None
    if os.isatty(fd):
        saved = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def cmd_replay(args: argparse.Namespace, backend) -> int:
    if not args.speed > 0:
        print("shellspan-sink: --speed must be more than 0", file=sys.stderr)
        return 2
    lines = _lines(backend, args.session_id, _params(args))
    out = sys.stdout

    def write(data: str) -> None:
        out.write(data)
        out.flush()

    interrupted = False
    try:
        with _quiet_terminal(sys.stdin.fileno()):
            play(lines, write, speed=args.speed, idle_limit=args.idle_limit or None)
    except KeyboardInterrupt:
        interrupted = True
    except NotFound as exc:
        print(f"shellspan-sink: {exc}", file=sys.stderr)
        return 1
    finally:
        out.write(RESTORE_TERMINAL)
        out.flush()
    if interrupted:
        print("replay stopped", file=sys.stderr)
        return 130
    return 0


def cmd_screen(args: argparse.Namespace, backend) -> int:
    try:
        if backend.queries is not None:
            found = RecordingQueries(backend.queries.store).screen(args.session_id, args.seq)
        else:
            found = backend.get(f"/api/sessions/{args.session_id}/screen", {"seq": args.seq})
    except NotFound as exc:
        found = None
        print(f"shellspan-sink: {exc}", file=sys.stderr)
    if found is None:
        print(f"shellspan-sink: no screen for command #{args.seq} of {args.session_id}",
              file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(found, indent=2))
    else:
        print(f"# screen after command #{found['seq']}: {found['command']}"
              f" ({found['columns']}x{found['lines']})")
        print("\n".join(found["text"]).rstrip("\n"))
    return 0


def add_commands(sessions, query_args: Callable[..., None], backend_for) -> None:
    """Add export, replay and screen to the `sessions` subcommands."""
    def with_backend(fn):
        return lambda args: fn(args, backend_for(args))

    def start_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("session_id")
        p.add_argument("--from-seq", type=int, help="start at command N")

    p = sessions.add_parser("export", help="a session's terminal recording as a file")
    query_args(p, formats=("asciicast",))
    start_args(p)
    p.add_argument("-o", dest="output", help="the file to write (default: standard output)")
    p.add_argument("--from", dest="from_time",
                   help="start at this time: ISO 8601, Unix seconds or an age like 15m")
    p.set_defaults(func=with_backend(cmd_export), format="asciicast")

    p = sessions.add_parser("replay", help="play a session's terminal recording here")
    query_args(p, formats=("asciicast",))
    start_args(p)
    p.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1)")
    p.add_argument("--idle-limit", type=float, default=2.0,
                   help="longest pause in seconds (default 2; 0: as recorded)")
    p.set_defaults(func=with_backend(cmd_replay))

    p = sessions.add_parser("screen", help="the terminal screen when a command ended")
    query_args(p, formats=("text", "json"))
    p.add_argument("session_id")
    p.add_argument("--seq", type=int, required=True, help="the command's number")
    p.set_defaults(func=with_backend(cmd_screen))
