"""Terminal recordings read back: asciicast export (streamed), the screen at the end of a
command, and a plain-text excerpt of a command's output. All values are bound parameters.

Records are read from ``shell_recordings`` in pages by primary key (session, seq), each page its
own query, so a long recording starts streaming at once and never holds the store for long (the
WAL's inserts go on between pages). A re-delivered record may be stored twice until a merge;
pages are read in seq order and a repeated seq is skipped, so every record counts once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import asciicast, tables
from .asciicast import CommandMark, Timeline
from .queries import _SESSION_ID, QueryError, iso, parse_time
from .store import Store
from .terminal import Screen, Terminal, parse_size

FIRST_PAGE_ROWS = 200  # small: the first bytes of a long recording go out at once
PAGE_ROWS = 2000
DEFAULT_SIZE = (80, 24)
CHECKPOINT_RECORDS = 1000  # the screen is kept every so many records replayed
CHECKPOINT_SESSIONS = 16  # of this many sessions, the most recently used


class NotFound(LookupError):
    """No such session, recording or command (HTTP 404)."""


@dataclass(frozen=True)
class Chunk:
    seq: int
    time_ns: int
    span_id: str
    event: str
    data: str


def _session_id(text: str) -> str:
    session_id = text.lower()
    if not _SESSION_ID.match(session_id):
        raise QueryError("a session id is 32 hexadecimal characters")
    return session_id


class AsciicastStream:
    """One asciicast file, produced a page at a time: `head` first, then `next_chunk` until it
    returns None. Each call is one short query."""

    def __init__(self, queries: RecordingQueries, session_id: str, head: str, start_seq: int,
                 t0_ns: int, marks: list[CommandMark] | None, from_command: int = 0) -> None:
        self.queries, self.session_id, self.head = queries, session_id, head
        self.after = start_seq - 1
        self.t0_ns, self.marks, self.from_command = t0_ns, marks, from_command
        self.timeline: Timeline | None = None
        self.page_rows = FIRST_PAGE_ROWS
        self.done = False

    def next_chunk(self) -> str | None:
        if self.done:
            return None
        if self.timeline is None:  # after the header went out: it does not need the commands
            marks = self.marks if self.marks is not None else self.queries.marks(self.session_id)
            self.timeline = Timeline(self.t0_ns, [m for m in marks if m.seq >= self.from_command])
        page = self.queries.page(self.session_id, self.after, self.page_rows)
        self.page_rows = PAGE_ROWS
        lines: list[str] = []
        for chunk in page:
            lines += self.timeline.record(chunk.seq, chunk.time_ns, chunk.event, chunk.data)
            self.after = chunk.seq
        if not page:
            self.done = True
            lines += self.timeline.finish()
            if not lines:
                return None
        return "".join(lines)

    def __iter__(self) -> Iterator[str]:
        yield self.head
        while (chunk := self.next_chunk()) is not None:
            yield chunk


@dataclass(frozen=True)
class Checkpoint:
    """The screen after replaying records 1..`seq`, which were `records` distinct records."""

    seq: int
    records: int
    screen: Screen


class RecordingQueries:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.options.name
        self._checkpoints: OrderedDict[str, list[Checkpoint]] = OrderedDict()
        self._lock = threading.Lock()

    # --- reading records ------------------------------------------------------------------------

    def page(self, session_id: str, after_seq: int, limit: int,
             until_seq: int | None = None) -> list[Chunk]:
        """Up to `limit` records after `after_seq` (through `until_seq`), each seq once."""
        until = "AND seq <= {until:UInt64}" if until_seq is not None else ""
        rows = self.store.query(
            "SELECT seq, toUnixTimestamp64Nano(time), span_id, event, data "
            f"FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            f"AND seq > {{after:UInt64}} {until} ORDER BY seq LIMIT {{limit:UInt32}}",
            {"id": session_id, "after": after_seq, "until": until_seq or 0, "limit": limit}).rows
        out: list[Chunk] = []
        for seq, time_ns, span_id, event, data in rows:
            if out and out[-1].seq == seq:
                continue
            out.append(Chunk(int(seq), int(time_ns), span_id, event, data))
        return out

    def chunks(self, session_id: str, after_seq: int, until_seq: int) -> Iterator[Chunk]:
        while True:
            page = self.page(session_id, after_seq, PAGE_ROWS, until_seq)
            if not page:
                return
            yield from page
            after_seq = page[-1].seq

    def _one(self, sql: str, params: dict[str, Any]) -> tuple | None:
        rows = self.store.query(sql, params).rows
        return rows[0] if rows else None

    def first(self, session_id: str) -> tuple[int, int, str, str, str, str] | None:
        """(seq, time, event, term, command, data) of the recording's first record, None if
        none."""
        return self._one(
            "SELECT seq, toUnixTimestamp64Nano(time), event, term, command, data "
            f"FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            "ORDER BY seq LIMIT 1", {"id": session_id})

    def size_at(self, session_id: str, seq: int) -> tuple[int, int]:
        """The terminal size in force at record `seq`: the last resize at or before it."""
        row = self._one(
            f"SELECT data FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            "AND event = 'r' AND seq <= {seq:UInt64} ORDER BY seq DESC LIMIT 1",
            {"id": session_id, "seq": seq})
        return (row and parse_size(row[0])) or DEFAULT_SIZE

    def seq_at(self, session_id: str, time_ns: int) -> int | None:
        """The first record at or after `time_ns`."""
        row = self._one(
            f"SELECT min(seq) FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            "AND toUnixTimestamp64Nano(time) >= {t:Int64} HAVING count() > 0",
            {"id": session_id, "t": time_ns})
        return int(row[0]) if row else None

    def marks(self, session_id: str) -> list[CommandMark]:
        """The session's commands in order, each with the first record it printed."""
        rows = self.store.query(
            "SELECT c.seq, c.span_id, toUnixTimestamp64Nano(c.start_time), c.duration_ns, "
            "c.command, c.exit_code, r.first_seq "
            f"FROM (SELECT * FROM {self.db(tables.COMMANDS)} FINAL "
            "      WHERE session_id = {id:String}) AS c "
            "LEFT JOIN (SELECT span_id, min(seq) AS first_seq "
            f"           FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            "           GROUP BY span_id) AS r ON r.span_id = c.span_id "
            "ORDER BY c.seq, c.start_time, c.span_id",
            {"id": session_id}, settings={"join_use_nulls": 1}).rows
        return [CommandMark(int(seq), span_id, int(start), int(start) + int(duration), command,
                            exit_code, int(first) if first is not None else None)
                for seq, span_id, start, duration, command, exit_code, first in rows]

    def _title(self, session_id: str) -> str:
        row = self._one(
            "SELECT max(user_name), max(host_name), max(shell_type) "
            f"FROM {self.db(tables.SESSIONS)} WHERE session_id = {{id:String}} "
            "GROUP BY session_id", {"id": session_id})
        user, host, shell = row or ("", "", "")
        who = f"{user}@{host}" if user or host else ""
        return " ".join(p for p in (who, shell, "session", session_id) if p)

    def _command(self, marks: list[CommandMark], seq: int) -> CommandMark:
        for mark in marks:
            if mark.seq == seq:
                return mark
        raise NotFound(f"no command #{seq} in this session")

    def _start_of(self, session_id: str, mark: CommandMark) -> int | None:
        return mark.anchor_seq if mark.anchor_seq is not None else self.seq_at(session_id,
                                                                               mark.start_ns)

    def _end_of(self, session_id: str, mark: CommandMark) -> int | None:
        """The last record that belongs to the command: its own, or any before it ended."""
        row = self._one(
            f"SELECT max(seq) FROM {self.db(tables.RECORDINGS)} WHERE session_id = {{id:String}} "
            "AND (span_id = {span:String} OR toUnixTimestamp64Nano(time) <= {end:Int64}) "
            "HAVING count() > 0", {"id": session_id, "span": mark.span_id, "end": mark.end_ns})
        return int(row[0]) if row else None

    # --- asciicast ------------------------------------------------------------------------------

    def asciicast(self, session_id: str, from_seq: int | None = None,
                  from_time: str | None = None,
                  idle_time_limit: float | None = None) -> AsciicastStream:
        """The recording as an asciicast v2 stream, whole or from command `from_seq` (or the
        time `from_time`: ISO 8601, Unix seconds or an age), with a fresh header there.
        Raises NotFound."""
        session_id = _session_id(session_id)
        first = self.first(session_id)
        if first is None:
            raise NotFound("this session has no recording")
        seq1, t0_ns, event, term, shell, data = first
        start_seq, marks, from_command = int(seq1), None, 0
        size = parse_size(data) if event == "r" else None
        if from_seq is not None:
            marks = self.marks(session_id)
            mark = self._command(marks, from_seq)
            start = self._start_of(session_id, mark)
            if start is None:
                raise NotFound(f"command #{from_seq} has nothing recorded after its start")
            start_seq, from_command, size = start, from_seq, None
            anchor = self.page(session_id, start - 1, 1)
            t0_ns = min(mark.start_ns, anchor[0].time_ns) if anchor else mark.start_ns
        elif from_time is not None:
            at = parse_time(from_time)
            start = self.seq_at(session_id, at)
            if start is None:
                raise NotFound("nothing was recorded after that time")
            marks = [m for m in self.marks(session_id) if m.start_ns >= at]
            start_seq, t0_ns, size = start, at, None
        width, height = size or self.size_at(session_id, start_seq)
        head = asciicast.header(width, height, int(t0_ns // 10**9), term=term, shell=shell,
                                title=self._title(session_id), idle_time_limit=idle_time_limit)
        return AsciicastStream(self, session_id, head, start_seq, int(t0_ns), marks, from_command)

    # --- the screen and excerpts ----------------------------------------------------------------

    def screen(self, session_id: str, seq: int, cells: bool = False) -> dict[str, Any]:
        """The terminal as it was when command `seq` ended: every record up to then replayed
        through a VT emulator. Raises NotFound."""
        session_id = _session_id(session_id)
        mark = self._command(self.marks(session_id), seq)
        end = self._end_of(session_id, mark)
        if end is None:
            raise NotFound("nothing was recorded by the end of that command")
        terminal = self._replay_through(session_id, end)
        columns, lines = terminal.size
        out = {"session_id": session_id, "seq": seq, "command": mark.command,
               "exit_code": mark.exit_code, "end_time": iso(mark.end_ns), "through_record": end,
               "columns": columns, "lines": lines, "cursor": terminal.cursor(),
               "text": terminal.lines()}
        if cells:
            out["cells"] = terminal.cells()
        return out

    def _replay_through(self, session_id: str, end: int) -> Terminal:
        """The terminal after records 1..`end`. A screen depends on everything before it, so
        replays start from the latest kept screen of the session that is still exact (no record
        has arrived before it since) and keep new ones on the way."""
        start = self._checkpoint(session_id, end)
        if start is None:
            terminal, fed, after = Terminal(*self.size_at(session_id, 1)), 0, 0
        else:
            terminal = Terminal(0, 0, screen=start.screen)
            fed, after = start.records, start.seq
        since = 0
        for chunk in self.chunks(session_id, after, end):
            terminal.feed(chunk.event, chunk.data)
            fed, since = fed + 1, since + 1
            if (since >= CHECKPOINT_RECORDS or chunk.seq == end) and terminal.between_sequences:
                self._keep(session_id, Checkpoint(chunk.seq, fed, terminal.snapshot()))
                since = 0
        return terminal

    def _checkpoint(self, session_id: str, end: int) -> Checkpoint | None:
        with self._lock:
            kept = [c for c in self._checkpoints.get(session_id, []) if c.seq <= end]
        if not kept:
            return None
        best = kept[-1]
        row = self._one(
            f"SELECT uniqExact(seq) FROM {self.db(tables.RECORDINGS)} "
            "WHERE session_id = {id:String} AND seq <= {seq:UInt64}",
            {"id": session_id, "seq": best.seq})
        if not row or int(row[0]) != best.records:  # a record arrived late: start over
            with self._lock:
                self._checkpoints.pop(session_id, None)
            return None
        return Checkpoint(best.seq, best.records, Terminal(0, 0, screen=best.screen).snapshot())

    def _keep(self, session_id: str, checkpoint: Checkpoint) -> None:
        with self._lock:
            kept = self._checkpoints.setdefault(session_id, [])
            self._checkpoints.move_to_end(session_id)
            if not any(c.seq == checkpoint.seq for c in kept):
                kept.append(checkpoint)
                kept.sort(key=lambda c: c.seq)
            while len(self._checkpoints) > CHECKPOINT_SESSIONS:
                self._checkpoints.popitem(last=False)

    def excerpt(self, session_id: str, seq: int, max_lines: int = 200,
                max_chars: int = 16_000) -> dict[str, Any]:
        """What command `seq` printed, as plain text (escape sequences interpreted by a VT
        emulator), at most the last `max_lines` lines and `max_chars` characters. Raises
        NotFound."""
        if not 1 <= max_lines <= 10_000 or not 1 <= max_chars <= 1_000_000:
            raise QueryError("max_lines must be 1..10000 and max_chars 1..1000000")
        session_id = _session_id(session_id)
        mark = self._command(self.marks(session_id), seq)
        start, end = self._start_of(session_id, mark), self._end_of(session_id, mark)
        lines: list[str] = []
        truncated = False
        if start is not None and end is not None and start <= end:
            terminal = Terminal(*self.size_at(session_id, start), history=max_lines)
            for chunk in self.chunks(session_id, start - 1, end):
                terminal.feed(chunk.event, chunk.data)
            lines = terminal.history_lines()
            while lines and not lines[-1]:
                lines.pop()
            truncated = len(lines) > max_lines
            lines = lines[-max_lines:]
        text = "\n".join(lines)
        if len(text) > max_chars:
            text, truncated = text[-max_chars:], True
        return {"session_id": session_id, "seq": seq, "command": mark.command,
                "exit_code": mark.exit_code, "start_time": iso(mark.start_ns),
                "end_time": iso(mark.end_ns), "text": text, "truncated": truncated}
