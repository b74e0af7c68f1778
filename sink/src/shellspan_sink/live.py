"""Live sessions: what followers of one session and watchers of the sessions list are sent, as
spans land in the store.

How the sink learns of new spans: the write-ahead log calls `LiveHub.notify` after each insert
into the store, so what a stream sends is already queryable; spans that another writer (the
contrib ClickHouse exporter) stores are found by a bounded poll every `poll_s` seconds while
streams are open, which also notices sessions that became abandoned with the clock alone. A
request that holds spans of a followed session (the encoder reports each request's trace ids)
has its WAL segment inserted at once rather than when the segment is due (`followed`), which
takes up to half a second off.

Each notification (at most one round per `min_gap_s`) runs one round for every open stream:

* followed sessions: one query for all their rows by id; the commands of those whose command
  count moved (one query); each follower is sent what it has not seen (`SessionFollower`);
* the sessions list: the ids of the sessions updated since the last round (the update log,
  by the store's clock), read once by id and offered to each watcher (`ChangesWatcher`), which
  keeps those its filters want.

The number of open streams is bounded (`max_streams`); a stream whose client reads too slowly
is closed (the client reconnects with Last-Event-ID and resumes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from . import tables
from .annotations import tagged_sessions
from .queries import SessionFilter, SessionQueries, finite, parse_time, split_by_owner

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]
QUEUE_LIMIT = 10_000  # events waiting for a slow client before its stream is closed
RESUME_LIMIT_MS = 3_600_000  # a list watcher resuming from further back is told to reload


class TooManyStreams(Exception):
    """Every stream slot is taken (answered 503, retry later)."""


@dataclass(frozen=True)
class LiveLimits:
    max_streams: int = 64
    heartbeat_s: float = 15.0
    poll_s: float = 2.0
    min_gap_s: float = 0.02


@dataclass
class Event:
    kind: str  # the SSE event type
    data: Any
    id: str | None = None

    def encode(self) -> bytes:
        head = f"event: {self.kind}\n" + (f"id: {self.id}\n" if self.id is not None else "")
        data = json.dumps(finite(self.data), default=str, allow_nan=False)
        return (head + "data: " + data + "\n\n").encode()


class Stream:
    """One open SSE connection's queue of events."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.ready = False  # set once its first events are queued: rounds skip it before
        self.closed = False

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            log.warning("closing a live stream whose client reads too slowly")
            self.close()
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


def command_key(command: dict[str, Any]) -> tuple:
    return (command["seq"], command["start_time"] or "", command["span_id"])


class SessionFollower(Stream):
    """A follower of one session: its commands as they arrive, its state changes, its end.

    Event ids are ``N.SPAN``: the client has N commands, the last of which in the session's
    order is SPAN. On resume the commands after SPAN are sent if N says the client has every
    command up to it; otherwise (one arrived late, out of order) all are sent again and the
    client keeps one of each span id."""

    def __init__(self, session_id: str, last_event_id: str | None) -> None:
        super().__init__()
        self.session_id = session_id
        self.last_event_id = last_event_id
        self.sent: set[str] = set()
        self.last_span = ""  # the sent command that comes last in the session's order
        self._last_key: tuple = ()
        self.state: str | None = None

    @property
    def token(self) -> str:
        return f"{len(self.sent)}.{self.last_span}"

    def _resumed(self, commands: list[dict[str, Any]]) -> None:
        """Mark what a resuming client already has as sent."""
        count, _, span = (self.last_event_id or "").partition(".")
        if not count.isdigit() or not span:
            return
        spans = [c["span_id"] for c in commands]
        if span in spans and spans.index(span) + 1 == int(count):
            self.sent.update(spans[: int(count)])
            self.last_span, self._last_key = span, command_key(commands[int(count) - 1])

    def start(self, found: dict[str, Any]) -> None:
        """Queue the session as it is now (`get_session`'s answer) and what the client lacks."""
        commands = found["commands"]
        self._resumed(commands)
        self.state = found["session"]["state"]
        self.push(Event("session", found["session"], self.token))
        self._send_new(commands)
        if self.state == "ended":
            self.push(Event("end", found["session"], self.token))
            self.close()
        self.ready = True

    def _send_new(self, commands: list[dict[str, Any]]) -> None:
        """Send the commands (in the session's order) not sent yet."""
        for command in commands:
            if command["span_id"] not in self.sent:
                self.sent.add(command["span_id"])
                if not self.last_span or command_key(command) > self._last_key:
                    self.last_span, self._last_key = command["span_id"], command_key(command)
                self.push(Event("command", command, self.token))

    def wants_commands(self, row: dict[str, Any]) -> bool:
        return row["command_count"] != len(self.sent)

    def update(self, row: dict[str, Any] | None, commands: list[dict[str, Any]] | None) -> None:
        if row is None or not self.ready or self.closed:
            return
        if commands is not None:
            self._send_new(commands)
        if row["state"] != self.state:
            self.state = row["state"]
            if self.state == "ended":
                self.push(Event("end", row, self.token))
                self.close()
            else:
                self.push(Event("state", row, self.token))


class ChangesWatcher(Stream):
    """A watcher of the sessions list: the rows of sessions that changed (new ones, new
    commands, a new state, the end), as the list shows them. The user, host, component, shell
    type, time and tag filters are applied here (tags from the hub's look-up); the state filter is left to the client, which
    must also learn that a session it shows left that state. Event ids are the store time (ms)
    the rows are current to."""

    def __init__(self, flt: SessionFilter, last_event_id: str | None) -> None:
        super().__init__()
        self.filter = flt
        self.resume_from = int(last_event_id) if (last_event_id or "").isdigit() else None

    def wants(self, row: dict[str, Any], tagged: dict[str, set[str]]) -> bool:
        f = self.filter
        if f.tag is not None and row["session_id"] not in tagged.get(f.tag, ()):
            return False
        for field_name, column in (("user", "user_name"), ("host", "host_name"),
                                   ("component", "component_name"),
                                   ("shell_type", "shell_type")):
            value = getattr(f, field_name)
            if value is not None and row.get(column) != value:
                return False
        start = row["start_ns"]
        since, until = parse_time(f.since), parse_time(f.until)
        return (since is None or start >= since) and (until is None or start < until)

    def offer(self, rows: list[dict[str, Any]], watermark_ms: int,
              tagged: dict[str, set[str]]) -> None:
        """Send the rows this watcher's filter takes; `tagged`: for each tag a watcher filters
        on, the sessions among `rows` that carry it."""
        if not self.ready or self.closed:
            return
        wanted = [{k: v for k, v in r.items() if k != "start_ns"} for r in rows
                  if self.wants(r, tagged)]
        if wanted:
            self.push(Event("sessions", {"sessions": wanted}, str(watermark_ms)))


@dataclass
class _Counters:
    rounds: int = 0
    last_round_ms: float | None = None
    errors: int = 0
    last_error: str | None = None


@dataclass
class LiveHub:
    queries: SessionQueries
    run: Runner
    limits: LiveLimits = field(default_factory=LiveLimits)

    def __post_init__(self) -> None:
        self.streams: set[Stream] = set()
        self.counters = _Counters()
        self.watermark_ms: int | None = None  # the update log's time the watchers are at
        self._seen_at_ns = time.time_ns()  # for sessions that turn abandoned with the clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._followed: frozenset[str] = frozenset()

    # --- streams ---------------------------------------------------------------------------

    def open(self, stream: Stream) -> Stream:
        if len(self.streams) >= self.limits.max_streams:
            raise TooManyStreams(f"{len(self.streams)} live streams are open (the limit)")
        self.streams.add(stream)
        self._update_followed()
        return stream

    def close(self, stream: Stream) -> None:
        stream.close()
        self.streams.discard(stream)
        self._update_followed()

    def _update_followed(self) -> None:
        self._followed = frozenset(s.session_id for s in self.streams
                                   if isinstance(s, SessionFollower))

    def followed(self, trace_ids: Collection[str]) -> bool:
        """Whether a request holds spans of a followed session, given its trace ids (any
        thread)."""
        return not self._followed.isdisjoint(trace_ids)

    def close_all(self) -> None:
        for stream in list(self.streams):
            self.close(stream)

    async def start_watcher(self, watcher: ChangesWatcher) -> None:
        """Queue a watcher's first event: `ready` with the time it is current to, after the
        rows it missed when it resumes from an id."""
        now_ms = await self.run(self._store_now_ms)
        if watcher.resume_from is not None:
            if now_ms - watcher.resume_from > RESUME_LIMIT_MS:
                watcher.push(Event("reset", {"reason": "resumed from too long ago"}))
            else:
                ids, _ = await self.run(self._updated_since, watcher.resume_from)
                rows = await self.run(self._rows, ids)
                tagged = await self.run(self._tagged, [watcher], rows)
                watcher.ready = True
                watcher.offer(rows, now_ms, tagged)
        if self.watermark_ms is None:
            self.watermark_ms = now_ms
        watcher.push(Event("ready", {}, str(now_ms)))
        watcher.ready = True

    def state(self) -> dict[str, Any]:
        c = self.counters
        return {"streams": len(self.streams), "max_streams": self.limits.max_streams,
                "rounds": c.rounds, "last_round_ms": c.last_round_ms, "errors": c.errors,
                "last_error": c.last_error}

    # --- rounds ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Spans were stored (called from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.limits.poll_s)
            except asyncio.TimeoutError:
                pass  # a poll: spans another writer stored, sessions the clock turned abandoned
            self._wake.clear()
            if not self.streams:
                continue
            started = time.perf_counter()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store may be down: next round
                self.counters.errors += 1
                self.counters.last_error = str(exc)
                log.warning("live round failed: %s", exc)
            self.counters.rounds += 1
            self.counters.last_round_ms = round((time.perf_counter() - started) * 1000, 1)
            await asyncio.sleep(self.limits.min_gap_s)

    async def round(self) -> None:
        followers = [s for s in self.streams if isinstance(s, SessionFollower) and s.ready]
        watchers = [s for s in self.streams if isinstance(s, ChangesWatcher) and s.ready]
        if followers:
            ids = sorted({f.session_id for f in followers})
            rows = await self.run(self.queries.sessions_by_id, ids)
            wanted = sorted({f.session_id for f in followers
                             if f.session_id in rows and f.wants_commands(rows[f.session_id])})
            commands = await self.run(self.queries.commands_of, wanted) if wanted else {}
            owned = {sid: split_by_owner(rows[sid], cmds)[0] for sid, cmds in commands.items()}
            for f in followers:
                f.update(rows.get(f.session_id),
                         owned.get(f.session_id, []) if f.session_id in wanted else None)
        if watchers:
            since = self.watermark_ms if self.watermark_ms is not None else 0
            ids, watermark = await self.run(self._updated_since, since)
            now_ns = time.time_ns()
            aged = await self.run(self._turned_abandoned, self._seen_at_ns, now_ns) - ids
            self._seen_at_ns = now_ns
            if ids or aged:
                rows = [r for r in await self.run(self._rows, ids | aged)
                        if r["session_id"] in ids or r["state"] == "abandoned"]
                tagged = await self.run(self._tagged, watchers, rows)
                for w in watchers:
                    w.offer(rows, watermark, tagged)
            self.watermark_ms = watermark
        for stream in [s for s in self.streams if s.closed]:
            self.close(stream)

    # --- store access (run on the query thread) ----------------------------------------------

    def _store_now_ms(self) -> int:
        return int(self.queries.store.query("SELECT toUnixTimestamp64Milli(now64(3))").rows[0][0])

    def _updated_since(self, since_ms: int) -> tuple[set[str], int]:
        """Sessions updated after `since_ms` (store clock), and the latest update time seen."""
        rows = self.queries.store.query(
            f"SELECT session_id, toUnixTimestamp64Milli(max(updated_at)) "
            f"FROM {self.queries.db(tables.SESSION_UPDATES)} "
            "WHERE updated_at > fromUnixTimestamp64Milli({since:Int64}) GROUP BY session_id",
            {"since": since_ms}).rows
        return {r[0] for r in rows}, max((int(r[1]) for r in rows), default=since_ms)

    def _turned_abandoned(self, from_ns: int, to_ns: int) -> set[str]:
        """Open sessions that may have turned abandoned between the two times (a state change
        nothing is stored for): one of their rows' last activity crossed the abandon-after age
        (the caller keeps those that are abandoned now)."""
        age = int(self.queries.abandon_after * 1e9)
        rows = self.queries.store.query(
            f"SELECT DISTINCT session_id FROM {self.queries.db(tables.SESSION_INDEX)} "
            "WHERE ended = 0 AND last_seen > fromUnixTimestamp64Nano({lo:Int64}) "
            "AND last_seen <= fromUnixTimestamp64Nano({hi:Int64})",
            {"lo": from_ns - age, "hi": to_ns - age}).rows
        return {r[0] for r in rows}

    def _tagged(self, watchers: list[ChangesWatcher],
                rows: list[dict[str, Any]]) -> dict[str, set[str]]:
        """For each tag the watchers filter on, the sessions among `rows` that carry it."""
        ids = sorted({r["session_id"] for r in rows})
        out: dict[str, set[str]] = {}
        for tag in {w.filter.tag for w in watchers if w.filter.tag is not None}:
            if not ids:
                out[tag] = set()
                continue
            sub, params = tagged_sessions(self.queries.db, tag)
            out[tag] = {r[0] for r in self.queries.store.query(
                f"SELECT DISTINCT session_id FROM ({sub}) WHERE session_id IN {{ids:Array(String)}}",
                {**params, "ids": ids}).rows}
        return out

    def _rows(self, ids: set[str]) -> list[dict[str, Any]]:
        """The list rows of these sessions, newest first, each with its start in ns."""
        rows = list(self.queries.sessions_by_id(sorted(ids), keep_start_ns=True).values())
        rows.sort(key=lambda r: (-r["start_ns"], r["session_id"]))
        return rows
