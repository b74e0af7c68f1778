"""The sink's write-ahead log (WAL): acknowledge once on disk, insert into ClickHouse in large batches.

Each signal has its own WAL (its own directory, inserting into its own table): spans into
``otel_traces`` in the WAL directory, log records into ``otel_logs`` in its ``logs`` subdirectory.
A request's encoded rows are appended to the open segment, one record per UTC day of their rows
(``wal_records``); one ``fdatasync`` covers every request that arrived meanwhile (group commit),
and only then are they acknowledged. Segments are sealed by size or age and inserted by a separate
thread (``wal_insert``: normally one insert per segment, never more partitions per insert than
ClickHouse allows), then deleted. A segment whose insert fails because the store cannot take it
now stays on disk and is retried with backoff, so a store outage loses nothing; records the store
refuses for good are moved to the WAL's quarantine (``quarantine``) and never block the rest. A
restart (even after ``kill -9``) replays every sealed or partly written segment. A segment
replayed after its insert succeeded but before its deletion is inserted twice; queries read each
(trace id, span id) once (each recorded chunk once, for log records), so results do not change.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from . import tables
from .quarantine import Quarantine
from .rowbinary import COLUMNS
from .store import Store, StoreError
from .wal_insert import Progress, SegmentInserter
from .wal_records import Record, encode_record, read_records

log = logging.getLogger(__name__)

OPEN, SEALED = ".open", ".sealed"


class Overloaded(Exception):
    """The WAL is full or cannot be written; the client should retry later."""


@dataclass(frozen=True)
class RowBatch:
    """A request's encoded rows (of the WAL's table), by UTC day: (day, RowBinary, rows) chunks."""

    chunks: list[tuple[int, bytes, int]]
    size: int


class WriteAheadLog:
    def __init__(self, directory: Path, store: Store, *, table: str = tables.OTEL_TRACES,
                 columns: tuple[str, ...] = COLUMNS, segment_spans: int = 100_000,
                 segment_age: float = 0.5, max_bytes: int = 1 << 30,
                 retry_delay: float = 0.5, max_retry_delay: float = 10.0) -> None:
        self.dir = Path(directory)
        self.store = store
        self.table, self.columns = table, columns
        self.segment_spans = segment_spans
        self.segment_age = segment_age
        self.max_bytes = max_bytes
        self.retry_delay, self.max_retry_delay = retry_delay, max_retry_delay
        self._cond = threading.Condition()
        self._pending: list[tuple[Future, int]] = []
        self._fd: int | None = None
        self._open_path: Path | None = None
        self._open_rows = 0
        self._open_size = 0
        self._open_since = 0.0
        self._urgent = False
        self._seq = 0
        self._stopping = False
        self.pending_bytes = 0
        self.inserted_spans = 0
        self.failed_inserts = 0
        self.last_error: str | None = None
        self.last_insert_at: float | None = None
        self.quarantine = Quarantine(self.dir / "quarantine")
        self._inserter = SegmentInserter(store, self.quarantine, table, columns)
        self._progress: dict[str, Progress] = {}  # by segment, across attempts
        # Called (on the insert thread) after each insert into the store: what was inserted is
        # queryable by then. The live views and the rollups learn of new spans this way.
        self.listeners: list[Callable[[], None]] = []
        self._lock_fd: int | None = None
        self._threads = [threading.Thread(target=self._sync_loop, name="wal-sync", daemon=True),
                         threading.Thread(target=self._insert_loop, name="wal-insert", daemon=True)]

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> WriteAheadLog:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OSError(f"the WAL {self.dir} is in use by another sink") from exc
        self._recover()
        self.quarantine.load()
        for thread in self._threads:
            thread.start()
        return self

    def _recover(self) -> None:
        """Seal segments left open by a crash, cut back to their last whole record."""
        for path in sorted(self.dir.glob(f"*{OPEN}")):
            _, rows, valid = read_records(path)
            if valid < path.stat().st_size:
                log.warning("WAL %s: dropping a torn record at byte %d (never acknowledged)",
                            path.name, valid)
                os.truncate(path, valid)
            if rows:
                path.rename(path.with_suffix(SEALED))
            else:
                path.unlink()
        segments = sorted(self.dir.glob(f"*{SEALED}"))
        self.pending_bytes = sum(p.stat().st_size for p in segments)
        self._seq = max((int(p.stem) for p in segments), default=0)
        if segments:
            log.info("WAL: replaying %d segment(s), %d bytes", len(segments), self.pending_bytes)

    def stop(self, timeout: float = 30.0) -> None:
        """Seal what is open and try to insert everything before returning."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- the acknowledged path ------------------------------------------------------------------

    def check_room(self) -> None:
        """Refuse early (before a body is read and encoded) when the WAL is already full."""
        if self.pending_bytes >= self.max_bytes:
            raise Overloaded(f"WAL full ({self.pending_bytes} bytes waiting for the store)")

    def submit(self, batch: RowBatch, urgent: bool = False) -> Future:
        """Append a batch; the future resolves once it is on disk (fdatasync). An `urgent`
        batch (someone is following it live) has its segment sealed and inserted right after
        the sync instead of when the segment is due."""
        future: Future = Future()
        if batch.size == 0:
            future.set_result(0)
            return future
        record = b"".join(encode_record(Record(day, data, rows)) for day, data, rows in batch.chunks)
        with self._cond:
            if self._stopping:
                raise Overloaded("the sink is shutting down")
            if self.pending_bytes + len(record) > self.max_bytes:
                raise Overloaded(f"WAL full ({self.pending_bytes} bytes waiting for the store)")
            try:
                if self._fd is None:
                    self._seq += 1
                    self._open_path = self.dir / f"{self._seq:012d}{OPEN}"
                    self._fd = os.open(self._open_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                       0o600)
                    self._open_since = time.monotonic()
                    self._open_size = 0
                written = os.write(self._fd, record)
                if written != len(record):
                    raise OSError(f"short write ({written} of {len(record)} bytes)")
            except OSError as exc:
                # Cut a partial record off, so what follows (and recovery) stays readable.
                if self._fd is not None:
                    try:
                        os.ftruncate(self._fd, self._open_size)
                    except OSError:
                        pass
                raise Overloaded(f"WAL write failed: {exc}") from exc
            self._open_size += len(record)
            self._open_rows += batch.size
            self._urgent = self._urgent or urgent
            self.pending_bytes += len(record)
            self._pending.append((future, batch.size))
            self._cond.notify_all()
        return future

    def _sync_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping and not self._seal_due():
                    self._cond.wait(self.segment_age if self._fd is not None else None)
                pending, self._pending = self._pending, []
                fd, path = self._fd, self._open_path
                seal = fd is not None and (self._seal_due() or self._stopping)
                if seal:  # later appends start a new segment; this one is ours to finish
                    self._fd, self._open_path, self._open_rows = None, None, 0
                    self._urgent = False
                done = self._stopping and not seal
            # The sync runs outside the lock, so appends go on meanwhile (group commit).
            error: OSError | None = None
            try:
                if fd is not None:
                    os.fdatasync(fd)
            except OSError as exc:  # a disk that refuses: acknowledge nothing
                log.error("WAL sync failed: %s", exc)
                error = exc
            for future, size in pending:
                if error is None:
                    future.set_result(size)
                else:
                    future.set_exception(StoreError(f"WAL write failed: {error}"))
            if seal:
                os.close(fd)
                path.rename(path.with_suffix(SEALED))
                with self._cond:
                    self._cond.notify_all()
            if done:
                return

    def _seal_due(self) -> bool:
        return self._fd is not None and (
            self._urgent or self._open_rows >= self.segment_spans
            or time.monotonic() - self._open_since >= self.segment_age)

    # --- into the store -------------------------------------------------------------------------

    def _insert_loop(self) -> None:
        delay = self.retry_delay
        while True:
            with self._cond:
                segments = sorted(self.dir.glob(f"*{SEALED}"))
                while not segments and not (self._stopping and self._fd is None):
                    self._cond.wait(1.0)
                    segments = sorted(self.dir.glob(f"*{SEALED}"))
                if not segments:
                    return
            path = segments[0]
            records, rows, _ = read_records(path)
            size = path.stat().st_size
            progress = self._progress.setdefault(path.name, Progress())
            try:
                self._inserter.insert(path.stem, records, progress)
            except Exception as exc:  # the store or the quarantine's disk: retried with backoff
                self.failed_inserts += 1
                self.last_error = str(exc)
                if isinstance(exc, (StoreError, OSError)):
                    log.warning("insert of %d rows from the WAL %s failed (kept, retry in %.1fs): "
                                "%s", rows, self.dir, delay, exc)
                else:
                    log.exception("insert of %d rows from the WAL %s failed (kept, retry in %.1fs)",
                                  rows, self.dir, delay)
                with self._cond:
                    if self._stopping:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            delay = self.retry_delay
            path.unlink()
            del self._progress[path.name]
            with self._cond:
                self.pending_bytes -= size
                self.inserted_spans += progress.inserted_spans
                self.last_insert_at = time.time()
                self.last_error = None
            for listener in self.listeners:
                try:
                    listener()
                except Exception:  # noqa: BLE001 - a listener must never stop the inserts
                    log.exception("WAL insert listener failed")

    def state(self) -> dict:
        with self._cond:
            segments = len(list(self.dir.glob(f"*{SEALED}"))) + (self._fd is not None)
            return {"dir": str(self.dir), "pending_bytes": self.pending_bytes, "segments": segments,
                    "inserted_spans": self.inserted_spans, "failed_inserts": self.failed_inserts,
                    "last_error": self.last_error, "last_insert_at": self.last_insert_at,
                    "quarantine": self.quarantine.state()}
