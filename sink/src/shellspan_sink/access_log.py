"""The access log: reading a session's commands is itself recorded (who, when, what, through
which door), and an auditor lists it.

Recording stays off the request path's store: an event is one line appended to a journal file
(a single ``write``, so it survives a crash of the sink once the read is answered) and a writer
thread inserts the journal into ClickHouse in batches, every half second. A batch whose insert
fails stays on disk and is retried; a restart inserts what an earlier run left. Each event has
an id and the table collapses repeats under FINAL, so an event inserted twice (a crash between
insert and deletion) is listed once. A journal that cannot be written refuses the read (HTTP
503): no read goes unrecorded.

Doors: ``api`` (any HTTP client), ``cli`` (``shellspan-sink``), ``ui`` (the web UI), ``mcp``
(the MCP server). Actions: ``show``, ``search``, the reads of a terminal recording
(``recording``, ``screen``, ``excerpt``), and ``sql`` (a statement through the SQL door, which
can read any session: its text is kept). All doors but ``mcp`` over HTTP are what the client says it is (the
``X-Shellspan-Client`` header); the subject is the verified one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import tables
from .queries import QueryError, filter_values, iso, time_range
from .store import Store, StoreError

log = logging.getLogger(__name__)

DOORS = ("api", "cli", "ui", "mcp")
CLIENT_HEADER = "X-Shellspan-Client"
SHOW, SEARCH, SQL = "show", "search", "sql"
RECORDING_READS = ("recording", "screen", "excerpt")  # actions of reads of a terminal recording
FOLLOW = "follow"  # a session's live stream of commands
COLUMNS = ("event_id", "time", "subject", "verified", "door", "action", "session_ids", "detail",
           "client_address")
MAX_DETAIL = 2000
MAX_LIMIT = 10_000
CURRENT = "current.jsonl"
BATCH_SUFFIX = ".batch"


class AccessLogUnavailable(StoreError):
    """The event could not be recorded, so the read is refused (HTTP 503, like a store error)."""


def door_of(declared: str | None) -> str:
    """The door a client declares (an unknown value counts as the plain API)."""
    value = (declared or "").strip().lower()
    return value if value in DOORS else "api"


@dataclass(frozen=True)
class Reader:
    """Who reads: the verified subject (or ``anonymous``), through which door, from where."""

    subject: str
    verified: bool
    door: str = "api"
    client_address: str = ""


@dataclass(frozen=True)
class AccessEvent:
    event_id: str
    time: float  # Unix seconds, millisecond precision
    subject: str
    verified: int
    door: str
    action: str
    session_ids: list[str] = field(default_factory=list)
    detail: str = ""
    client_address: str = ""

    @classmethod
    def of(cls, reader: Reader, action: str, session_ids: list[str],
           detail: dict[str, Any] | None = None) -> AccessEvent:
        text = json.dumps(detail or {}, sort_keys=True, default=str)[:MAX_DETAIL]
        return cls(uuid.uuid4().hex, round(time.time(), 3), reader.subject, int(reader.verified),
                   reader.door, action, sorted(set(session_ids)), text, reader.client_address)

    def line(self) -> bytes:
        return (json.dumps(asdict(self), separators=(",", ":")) + "\n").encode()


@dataclass
class AccessFilter:
    subject: str | None = None
    session: str | None = None
    door: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> AccessFilter:
        return cls(**filter_values(cls, params))

    def clauses(self) -> tuple[str, dict[str, Any]]:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        where, params = [], {"limit": self.limit}
        for name, condition in (("subject", "subject = {subject:String}"),
                                ("session", "has(session_ids, {session:String})"),
                                ("door", "door = {door:String}"),
                                ("action", "action = {action:String}")):
            value = getattr(self, name)
            if value is not None:
                if len(value) > 1024:
                    raise QueryError(f"{name} is longer than 1024 characters")
                where.append(condition)
                params[name] = value.lower() if name == "session" else value
        bounds, bound_params = time_range("time", self.since, self.until)
        where += bounds
        params.update(bound_params)
        return " AND ".join(where) or "1", params


class AccessLog:
    """Records access events and lists them.

    With a journal directory (the sink) events are journaled and inserted by a writer thread;
    without one (a command querying a ClickHouse server directly) each is inserted at once.
    """

    def __init__(self, store: Store, journal_dir: Path | None = None, *,
                 flush_interval: float = 0.5, max_retry_delay: float = 10.0) -> None:
        self.store = store
        self.db = store.options.name
        self.dir = Path(journal_dir) if journal_dir is not None else None
        self.flush_interval = flush_interval
        self.max_retry_delay = max_retry_delay
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None

    # --- writing ------------------------------------------------------------------------------

    def start(self) -> AccessLog:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            # What a previous run left goes aside first: a line a crash cut short must not run
            # into the next event appended.
            self._seal()
            self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
            self._thread.start()
        return self

    def record(self, event: AccessEvent) -> None:
        """Record `event`, or raise AccessLogUnavailable (the caller then refuses the read)."""
        if self.dir is None:
            try:
                self.store.insert_json_rows(tables.ACCESS_LOG, COLUMNS, event.line())
            except StoreError as exc:
                raise AccessLogUnavailable(f"cannot record the access: {exc}") from exc
            return
        line = event.line()
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = os.open(self.dir / CURRENT, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                       0o600)
                if os.write(self._fd, line) != len(line):
                    raise OSError("short write")
            except OSError as exc:
                raise AccessLogUnavailable(f"cannot record the access: {exc}") from exc
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Insert what is journaled (as far as the store allows), then stop the writer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _journal_files(self) -> list[Path]:
        files = sorted(self.dir.glob(f"*{BATCH_SUFFIX}"))
        return [p for p in [*files, self.dir / CURRENT] if p.is_file()]

    def _seal(self) -> None:
        """Move the current journal aside as a batch; new events start a new file."""
        current = self.dir / CURRENT
        with self._lock:
            if not current.is_file() or current.stat().st_size == 0:
                return
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            os.replace(current, self.dir / f"{time.time_ns():020d}{BATCH_SUFFIX}")

    def _insert_batches(self) -> None:
        for path in sorted(p for p in self.dir.glob(f"*{BATCH_SUFFIX}") if p.is_file()):
            lines, bad = _read_lines(path)
            if bad:
                log.warning("access log: %d unreadable line(s) in %s skipped", bad, path.name)
            if lines:
                self.store.insert_json_rows(tables.ACCESS_LOG, COLUMNS, b"".join(lines))
            path.unlink()

    def _run(self) -> None:
        delay = self.flush_interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self._seal()
                self._insert_batches()
                delay = self.flush_interval
            except (StoreError, OSError) as exc:
                delay = min(max(delay * 2, self.flush_interval), self.max_retry_delay)
                log.warning("access log: insert failed, retrying in %.1f s: %s", delay, exc)
                if stopping:
                    return  # the journal keeps the events for the next start
                continue
            if stopping:
                return
            time.sleep(self.flush_interval)  # batch what arrives meanwhile

    # --- reading ------------------------------------------------------------------------------

    def list(self, flt: AccessFilter) -> dict[str, Any]:
        where, params = flt.clauses()
        rows = self.store.query(
            "SELECT event_id, toUnixTimestamp64Milli(time) AS time_ms, subject, verified, door, "
            "action, session_ids, detail, client_address "
            f"FROM {self.db(tables.ACCESS_LOG)} FINAL WHERE {where} "
            "ORDER BY time DESC, event_id LIMIT {limit:UInt32}", params).dicts()
        events = []
        for r in rows:
            r["time"] = iso(r.pop("time_ms") * 1_000_000)
            r["verified"] = bool(r["verified"])
            r["session_ids"] = list(r["session_ids"])
            try:
                r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
            except ValueError:
                pass  # cut at MAX_DETAIL: shown as stored
            events.append(r)
        return {"events": events, "count": len(events)}


def _read_lines(path: Path) -> tuple[list[bytes], int]:
    """(the journal's complete JSON lines, how many others were skipped)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    good, bad = [], 0
    for line in blob.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn line")
            json.loads(line)
        except ValueError:
            bad += 1
            continue
        good.append(line)
    return good, bad
