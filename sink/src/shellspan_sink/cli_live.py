"""The live commands of the CLI: ``sessions show ID --follow`` and ``sessions list --watch``,
reading the sink's Server-Sent Events (``live_routes.py``), and the small SSE reader they use.

Both reconnect when the stream breaks, with ``Last-Event-ID``, so nothing is printed twice or
missed.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from .access_log import CLIENT_HEADER
from .api_client import error_detail

RETRY_S = (0.5, 1, 2, 5)  # waits between reconnections (the last repeats)


def warn(message: str) -> None:
    print(f"shellspan-sink: {message}", file=sys.stderr)


@dataclass
class SseEvent:
    kind: str
    data: Any
    id: str | None


def iter_events(lines: Iterator[bytes]) -> Iterator[SseEvent]:
    """Server-Sent Events from the lines of a ``text/event-stream`` body (comments skipped;
    the data of an event is JSON)."""
    kind, data, event_id = "message", [], None
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(kind, json.loads("\n".join(data)), event_id)
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class StreamGone(Exception):
    """The stream cannot be (re)opened: the message says why."""


def until_done(run: Callable[[], int]) -> int:
    """Run a streaming command: 1 if its stream cannot be opened, 0 on Ctrl-C."""
    try:
        return run()
    except StreamGone as exc:
        print(f"shellspan-sink: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def open_stream(url: str, token: str | None, last_event_id: str | None,
                timeout: float = 60.0):
    headers = {"Accept": "text/event-stream", CLIENT_HEADER: "cli"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        detail = error_detail(exc)
        if exc.code in (404, 400, 401, 403):
            raise StreamGone(f"{url} answered {exc.code}: {detail}") from exc
        raise OSError(f"{exc.code}: {detail}") from exc


def follow_events(url: str, token: str | None,
                  on_error: Callable[[str], None]) -> Iterator[SseEvent]:
    """The events of a stream, reconnecting (with Last-Event-ID) until the caller stops."""
    last_id: str | None = None
    failures = 0
    while True:
        try:
            with open_stream(url, token, last_id) as response:
                failures = 0
                for event in iter_events(response):
                    if event.id is not None:
                        last_id = event.id
                    yield event
        except StreamGone:
            raise
        except (OSError, urllib.error.URLError) as exc:
            on_error(f"stream interrupted ({exc}); reconnecting")
        time.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
        failures += 1


# --- sessions show ID --follow ---------------------------------------------------------------

COMMAND_LINE = "{seq:>5}  {start_time:29}  {took:>10}  {exit:>4}  {cwd}  {command}"


def command_line(c: dict[str, Any], escape: Callable[[Any], str] = str) -> str:
    return escape(COMMAND_LINE.format(
        seq=c.get("seq", ""), start_time=c.get("start_time") or "",
        took=f"{c['duration_ms']:.1f}ms" if c.get("duration_ms") is not None else "",
        exit="" if c.get("exit_code") is None else c["exit_code"], cwd=c.get("cwd") or "",
        command=c.get("command", "")))


def follow_session(api: str, token: str | None, session_id: str, fmt: str,
                   escape: Callable[[Any], str] = str, who: Callable[[dict], str] | None = None,
                   out: TextIO = sys.stdout) -> int:
    """Print a session's commands as they arrive, then its end; 0 once it ended. Table lines
    go through `escape` (control characters a command holds must not act on the terminal);
    `who` says whose session it is."""
    url = f"{api}/api/sessions/{urllib.parse.quote(session_id, safe='')}/events"
    seen: set[str] = set()

    def emit(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    def run() -> int:
        for event in follow_events(url, token, warn):
            if fmt == "json":
                if event.kind != "command" or event.data["span_id"] not in seen:
                    emit(json.dumps({"event": event.kind, "data": event.data}, default=str))
            elif event.kind == "session" and not seen:
                s = event.data
                user = who(s) if who else s.get("user_name") or "-"
                emit(escape(f"session {s['session_id']}  {user}@{s.get('host_name') or '-'}  "
                            f"{s.get('shell_type') or ''}  started {s.get('start_time')}  "
                            f"{s['state']}"))
                emit(COMMAND_LINE.format(seq="SEQ", start_time="START_TIME", took="TOOK",
                                         exit="EXIT", cwd="CWD", command="COMMAND"))
            elif event.kind == "command" and event.data["span_id"] not in seen:
                emit(command_line(event.data, escape))
            elif event.kind == "state":
                emit(f"-- {event.data['state']} (last seen {event.data.get('last_seen')})")
            elif event.kind == "end":
                s = event.data
                code = f", code {s['exit_code']}" if s.get("exit_code") is not None else ""
                emit(escape(f"-- ended {s.get('end_time')} ({s.get('exit_reason') or 'unknown'}"
                            f"{code}); {s.get('command_count')} commands, "
                            f"{s.get('failed_count')} failed"))
            if event.kind == "command":
                seen.add(event.data["span_id"])
            if event.kind == "end":
                return 0
        return 0

    return until_done(run)


# --- sessions list --watch -------------------------------------------------------------------

class WatchedList:
    """The rows a watched list shows: a page of the list, kept current by the changes stream."""

    def __init__(self, state: str | None, limit: int) -> None:
        self.state, self.limit = state, limit
        self.rows: list[dict[str, Any]] = []

    def load(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows[: self.limit]

    def apply(self, changed: list[dict[str, Any]]) -> bool:
        """Fold changed rows in; True if a row left the page (it should be loaded again to
        fill up)."""
        by_id = {r["session_id"]: r for r in self.rows}
        left = False
        for row in changed:
            keep = self.state is None or row["state"] == self.state
            if row["session_id"] in by_id:
                if keep:
                    by_id[row["session_id"]] = row
                else:
                    del by_id[row["session_id"]]
                    left = True
            elif keep:
                by_id[row["session_id"]] = row
        # Newest first, ties by id ascending, as the list orders them.
        rows = sorted(by_id.values(), key=lambda r: r["session_id"])
        rows.sort(key=lambda r: r["start_time"], reverse=True)
        self.rows = rows[: self.limit]
        return left and len(self.rows) < self.limit


def watch_list(api: str, token: str | None, params: dict[str, Any], fetch: Callable[[], list],
               render: Callable[[list[dict[str, Any]]], str], out: TextIO = sys.stdout) -> int:
    """Show the list, and show it again in place whenever the changes stream says a row
    changed (on a terminal; elsewhere each version is printed after the last)."""
    stream_params = {k: v for k, v in params.items()
                     if v is not None and k not in ("limit", "cursor", "state")}
    query = urllib.parse.urlencode(stream_params)
    url = f"{api}/api/changes" + (f"?{query}" if query else "")
    watched = WatchedList(params.get("state"), int(params.get("limit") or 100))
    tty = out.isatty()

    def show() -> None:
        stamp = time.strftime("%H:%M:%S")
        text = render(watched.rows)
        if tty:
            out.write("\x1b[H\x1b[2J" + text + f"\n\nwatching, updated {stamp} (Ctrl-C to stop)\n")
        else:
            out.write(f"-- {stamp}\n{text}\n\n")
        out.flush()

    def run() -> int:
        for event in follow_events(url, token, warn):
            if event.kind in ("ready", "reset"):
                watched.load(fetch())
                show()
            elif event.kind == "sessions":
                if watched.apply(event.data["sessions"]):
                    watched.load(fetch())
                show()
        return 0

    return until_done(run)
