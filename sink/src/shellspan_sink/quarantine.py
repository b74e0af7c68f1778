"""WAL records the store refused for a reason that retrying cannot fix (bad data, too many parts
or partitions, a type error), kept on disk instead of blocking every later insert.

Each entry is two files in the quarantine directory, named after the segment and the record's
place in it: ``<segment>-<index>.rec`` (the record, in the WAL's record format, so it can be put
back: a ``.rec`` file moved into the WAL directory as ``<number>.sealed`` is inserted again) and
``<segment>-<index>.json`` (why, when, how many spans). Both are written and synced before the
segment they came from is deleted, and the names are fixed, so a crash in between writes the same
entry again rather than a second one. Entries are counted again on start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from .wal_records import Record, encode_record

log = logging.getLogger(__name__)


def _write_synced(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}

    def load(self) -> Quarantine:
        self.dir.mkdir(parents=True, exist_ok=True)
        for meta in sorted(self.dir.glob("*.json")):
            try:
                entry = json.loads(meta.read_text())
            except (OSError, ValueError) as exc:
                entry = {"spans": None, "bytes": None, "error": f"unreadable entry: {exc}"}
            self._entries[meta.stem] = {"name": meta.stem, **entry}
        if self._entries:
            log.warning("quarantine: %d record(s) in %s were refused by the store and are kept "
                        "there", len(self._entries), self.dir)
        return self

    def add(self, segment: str, index: int, record: Record, error: str) -> None:
        name = f"{segment}-{index:06d}"
        entry = {"segment": segment, "record": index, "day": record.day, "spans": record.rows,
                 "bytes": len(record.data), "error": error[:2000], "at": time.time()}
        _write_synced(self.dir / f"{name}.rec", encode_record(record))
        _write_synced(self.dir / f"{name}.json", json.dumps(entry).encode())
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self._lock:
            self._entries[name] = {"name": name, **entry}
        log.error("quarantined %d span(s) of WAL segment %s (record %d) in %s: %s",
                  record.rows, segment, index, self.dir, error)

    def state(self, listed: int = 10) -> dict:
        with self._lock:
            entries = list(self._entries.values())
        return {"dir": str(self.dir), "records": len(entries),
                "spans": sum(e.get("spans") or 0 for e in entries),
                "bytes": sum(e.get("bytes") or 0 for e in entries),
                "entries": entries[-listed:]}
