"""The WAL's record format: one record per request and day, appended to a segment file.

``magic "SSW2" | length u32 | rows u32 | crc32 u32 | day u32 | data`` (little-endian): ``data`` is
RowBinary rows of the WAL's table (``otel_traces``: spans starting on UTC day ``day``;
``otel_logs``: records of that day), ``day`` counted from the Unix epoch (``0xFFFFFFFF``:
unknown), and the CRC covers the day and the data. Records written before days were kept (magic
``SSW1``, no day field) are still read, with an unknown day.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"SSW2"
HEADER = struct.Struct("<4sIIII")
LEGACY_MAGIC = b"SSW1"
LEGACY_HEADER = struct.Struct("<4sIII")
UNKNOWN_DAY = 0xFFFFFFFF
_DAY = struct.Struct("<I")


@dataclass(frozen=True)
class Record:
    day: int | None  # None: unknown (a record written before days were kept)
    data: bytes
    rows: int


def encode_record(record: Record) -> bytes:
    day = UNKNOWN_DAY if record.day is None else record.day
    crc = zlib.crc32(record.data, zlib.crc32(_DAY.pack(day)))
    return HEADER.pack(MAGIC, len(record.data), record.rows, crc, day) + record.data


def parse_records(blob: bytes) -> tuple[list[Record], int]:
    """(records, bytes of the valid prefix). Stops at the first torn or corrupt record."""
    records: list[Record] = []
    offset = 0
    while offset + LEGACY_HEADER.size <= len(blob):
        magic = blob[offset:offset + 4]
        if magic == MAGIC and offset + HEADER.size <= len(blob):
            _, length, rows, crc, day = HEADER.unpack_from(blob, offset)
            start = offset + HEADER.size
            data = blob[start:start + length]
            valid = zlib.crc32(data, zlib.crc32(_DAY.pack(day))) == crc
            day_or_none = None if day == UNKNOWN_DAY else day
        elif magic == LEGACY_MAGIC:
            _, length, rows, crc = LEGACY_HEADER.unpack_from(blob, offset)
            start = offset + LEGACY_HEADER.size
            data = blob[start:start + length]
            valid = zlib.crc32(data) == crc
            day_or_none = None
        else:
            break
        if len(data) != length or not valid:
            break
        records.append(Record(day_or_none, data, rows))
        offset = start + length
    return records, offset


def read_records(path: Path) -> tuple[list[Record], int, int]:
    """(records, total rows, bytes of the valid prefix) of a segment file."""
    records, valid = parse_records(path.read_bytes())
    return records, sum(r.rows for r in records), valid
