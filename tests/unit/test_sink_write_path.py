"""Pieces of the sink's write path that need no process: the WAL record format, insert planning,
the store's error classification, and the OTLP/JSON decoder on hostile input."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellspan_sink import otlp
from shellspan_sink.outcomes import Refused
from shellspan_sink.store import classify
from shellspan_sink.wal_insert import plan
from shellspan_sink.wal_records import (
    LEGACY_HEADER,
    LEGACY_MAGIC,
    Record,
    encode_record,
    parse_records,
)


def test_records_round_trip_with_their_day_and_old_records_still_read():
    records = [Record(20000, b"rows of one day", 3), Record(None, b"unknown day", 1),
               Record(0, b"", 0)]
    legacy = LEGACY_HEADER.pack(LEGACY_MAGIC, 3, 2, zlib.crc32(b"old")) + b"old"
    blob = b"".join(encode_record(r) for r in records) + legacy
    assert parse_records(blob) == (records + [Record(None, b"old", 2)], len(blob))


@pytest.mark.parametrize("damage", ["torn", "flipped data", "flipped day", "garbage"])
def test_a_damaged_record_ends_the_valid_prefix(damage):
    good = encode_record(Record(5, b"good", 1))
    bad = bytearray(encode_record(Record(6, b"second", 2)))
    if damage == "torn":
        bad = bad[:-2]
    elif damage == "flipped data":
        bad[-1] ^= 1
    elif damage == "flipped day":
        bad[16] ^= 1
    else:
        bad = bytearray(b"\x00" * 40)
    assert parse_records(good + bytes(bad)) == ([Record(5, b"good", 1)], len(good))


def test_plan_keeps_each_insert_within_the_days_allowed():
    days = [3, 1, 3, 2, None, 1, 4, 5, None]
    records = [Record(d, b"x", 1) for d in days]
    batches = plan(records, max_days=2)
    assert batches == [[4, 8], [1, 5, 3], [0, 2, 6], [7]]
    assert sorted(i for b in batches for i in b) == list(range(len(days)))
    for batch in batches[1:]:
        assert len({days[i] for i in batch}) <= 2
    assert plan(records, None) == [[4, 8], [1, 5, 3, 0, 2, 6, 7]]
    assert plan([], 50) == []


@pytest.mark.parametrize("message,code,connection,transient", [
    ("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)",
     None, False, True),
    ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100).",
     None, False, False),
    ("Code: 252. DB::Exception: Too many parts (3001 with average size of 1.00 KiB) in table "
     "'t'. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
     None, False, True),
    ("Code: 131. DB::Exception: Too large string size: 18446744073709551615.", None, False, False),
    ("Code: 53. DB::Exception: Type mismatch", None, False, False),
    ("Cannot reach the server", None, True, True),
    ("HTTPDriver received an error without a code", None, False, True),
    ("Memory limit exceeded", 241, False, True),
])
def test_store_errors_are_outages_or_the_datas_fault(message, code, connection, transient):
    assert classify(message, code, connection)[1] is transient


# --- OTLP/JSON on hostile input: a clear refusal, never another exception ------------------------

KEYS = ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "parentSpanId", "attributes",
        "key", "value", "stringValue", "intValue", "doubleValue", "arrayValue", "kvlistValue",
        "values", "startTimeUnixNano", "endTimeUnixNano", "kind", "status", "code", "events",
        "links", "resource", "scope", "name", "droppedAttributesCount", "x"]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=False), st.text(max_size=20),
              st.sampled_from(["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "zz", "",
                               "1e999", "-1", "SPAN_KIND_SERVER", "NaN"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4))
def test_json_bodies_decode_or_are_refused(doc):
    body = json.dumps(doc).encode()
    try:
        out = otlp.to_protobuf(body, otlp.JSON)
    except Refused as refused:
        assert refused.outcome.answer.http_status == 400
    else:
        assert isinstance(out, bytes)


@pytest.mark.parametrize("depth", [50, 1000, 100_000])
def test_deep_json_is_refused_not_a_crash(depth):
    for body in (b"[" * depth + b"]" * depth, b'{"resourceSpans":' * depth + b"1" + b"}" * depth):
        try:
            otlp.to_protobuf(body, otlp.JSON)
        except Refused as refused:
            assert refused.outcome.answer.http_status == 400
