"""Inserting one sealed WAL segment: partition-bounded inserts, and poison isolated.

The raw tables (``otel_traces``, ``otel_logs``) are partitioned by day, and ClickHouse refuses an
insert that touches more than ``max_partitions_per_insert_block`` partitions. Records carry the
UTC day of their rows, so a segment is inserted in batches of at most half that many days (a UTC
day can meet two days of the server's time zone); normally that is one insert.

A batch the store refuses for a reason retrying cannot fix (``StoreError.transient`` false) is
split in halves until the records that fail alone are found; those go to the quarantine, the
rest is stored. A transient failure (the store is down, its disk is full) stops the segment, which
is retried whole later: what was already stored or quarantined in this process is skipped, and a
record stored twice (after a crash) is read once by every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .quarantine import Quarantine
from .store import Store, StoreError
from .wal_records import Record


def plan(records: Sequence[Record], max_days: int | None) -> list[list[int]]:
    """Record indices in insert batches, each touching at most `max_days` days (None: any).

    Records of unknown day (written before days were kept) form one batch, as they were inserted
    before; if it touches too many days, the store refuses it and bisection finds the culprits.
    """
    by_day: dict[int, list[int]] = {}
    unknown: list[int] = []
    for index, record in enumerate(records):
        if record.day is None:
            unknown.append(index)
        else:
            by_day.setdefault(record.day, []).append(index)
    batches = [unknown] if unknown else []
    days = sorted(by_day)
    step = max_days or len(days) or 1
    for lo in range(0, len(days), step):
        batches.append([i for day in days[lo:lo + step] for i in by_day[day]])
    return batches


@dataclass
class Progress:
    """What is done of one segment: kept across the attempts to insert it."""

    done: set[int] = field(default_factory=set)  # records stored or quarantined
    inserted_spans: int = 0
    quarantined_spans: int = 0


class SegmentInserter:
    """Inserts segments' records into `table` (RowBinary rows of `columns`)."""

    def __init__(self, store: Store, quarantine: Quarantine, table: str,
                 columns: tuple[str, ...]) -> None:
        self.store = store
        self.quarantine = quarantine
        self.table, self.columns = table, columns

    def insert(self, segment: str, records: Sequence[Record], progress: Progress) -> None:
        """Store or quarantine every record of `segment` not yet done, updating `progress`.

        Raises a transient StoreError when the store cannot take inserts now.
        """
        limit = self.store.partitions_per_insert()
        max_days = max(1, limit // 2) if limit else None
        for batch in plan(records, max_days):
            todo = [i for i in batch if i not in progress.done]
            if todo:
                self._store_or_isolate(segment, records, todo, progress)

    def _store_or_isolate(self, segment: str, records: Sequence[Record], indices: list[int],
                          progress: Progress) -> None:
        try:
            self.store.insert_rowbinary(self.table, self.columns,
                                        b"".join(records[i].data for i in indices))
        except StoreError as exc:
            if exc.transient:
                raise
            if len(indices) == 1:
                self.quarantine.add(segment, indices[0], records[indices[0]], str(exc))
                progress.done.add(indices[0])
                progress.quarantined_spans += records[indices[0]].rows
                return
            middle = len(indices) // 2
            self._store_or_isolate(segment, records, indices[:middle], progress)
            self._store_or_isolate(segment, records, indices[middle:], progress)
            return
        progress.done.update(indices)
        progress.inserted_spans += sum(records[i].rows for i in indices)
