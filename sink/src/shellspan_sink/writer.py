"""Group commit: many requests' spans become one columnar insert; each request is acknowledged
only when the insert holding its spans has succeeded.

The queue is bounded in spans. When it is full, `submit` raises `Overloaded` at once and the
receiver answers with OTLP's retryable status, instead of letting memory grow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future

from .columns import COLUMNS, ColumnBatch
from .store import Store, StoreError

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The write queue is full; the client should retry later."""


class BatchWriter:
    def __init__(self, store: Store, *, max_batch_spans: int = 50_000, max_delay: float = 0.05,
                 max_queued_spans: int = 500_000) -> None:
        self.store = store
        self.max_batch_spans = max_batch_spans
        self.max_delay = max_delay
        self.max_queued_spans = max_queued_spans
        self._queue: deque[tuple[ColumnBatch, Future]] = deque()
        self._queued_spans = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shellspan-writer", daemon=True)
        self.inserted_spans = 0
        self.failed_inserts = 0
        self.last_error: str | None = None

    def start(self) -> BatchWriter:
        self._thread.start()
        return self

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    def submit(self, batch: ColumnBatch) -> Future:
        """Queue a batch; the future resolves once it is in the store (or fails with StoreError)."""
        future: Future = Future()
        if batch.size == 0:
            future.set_result(0)
            return future
        with self._cond:
            if self._stopping:
                raise Overloaded("the sink is shutting down")
            if self._queued_spans + batch.size > self.max_queued_spans and self._queue:
                raise Overloaded(f"write queue full ({self._queued_spans} spans waiting)")
            self._queue.append((batch, future))
            self._queued_spans += batch.size
            self._cond.notify()
        return future

    def _take(self) -> list[tuple[ColumnBatch, Future]]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return []
            # Wait briefly for more requests, so concurrent clients share one insert.
            deadline = time.monotonic() + self.max_delay
            while (self._queued_spans < self.max_batch_spans and not self._stopping
                   and (remaining := deadline - time.monotonic()) > 0):
                self._cond.wait(remaining)
            taken, spans = [], 0
            while self._queue and (not taken or spans + self._queue[0][0].size <= self.max_batch_spans):
                item = self._queue.popleft()
                taken.append(item)
                spans += item[0].size
            self._queued_spans -= spans
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return
            merged = taken[0][0] if len(taken) == 1 else ColumnBatch()
            if len(taken) > 1:
                for batch, _ in taken:
                    merged.extend(batch)
            try:
                self.store.insert_columns("otel_traces", COLUMNS, merged.columns)
            except StoreError as exc:
                self.failed_inserts += 1
                self.last_error = str(exc)
                log.warning("insert of %d spans failed: %s", merged.size, exc)
                for _, future in taken:
                    future.set_exception(exc)
                continue
            self.inserted_spans += merged.size
            for batch, future in taken:
                future.set_result(batch.size)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
