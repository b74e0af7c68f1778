"""The compiled encoder (shellspan_sink_accel) against the reference (shellspan_sink.rowbinary).

Both turn a serialized ExportTraceServiceRequest into RowBinary rows grouped by day; their
outputs must be byte-identical (the sink's stamped attributes written, a client's own values for
them dropped), their counts equal (rows, invalid ids, times outside the window, spans per trace id,
also with some trace ids skipped), and they must refuse the same bodies with ValueError. Requests
come from the official protobuf classes (random trees), from a wire-level re-encoder that adds
what protobuf allows but the classes never write (split and repeated occurrences, unknown fields,
groups, known numbers with other wire types), from mutated bytes, and from hand-made edge cases.
"""

from __future__ import annotations

import math
import random
import shutil
import struct

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from shellspan import semconv
from shellspan_sink import rowbinary

try:
    import shellspan_sink_accel
except ImportError as exc:
    # The accelerator is optional, but `make setup` builds it wherever cargo exists: a missing
    # build there is a failure, not a reason to skip.
    if shutil.which("cargo"):
        raise ImportError(f"cargo is present but shellspan_sink_accel is not installed ({exc}); "
                          "`make setup` builds it from sink-accel/") from exc
    pytest.skip(f"shellspan_sink_accel is not installed and cargo is absent ({exc})",
                allow_module_level=True)

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(fn, body, identity, max_attributes, max_attribute_length, window, skip=None):
    try:
        return fn(body, identity, max_attributes, max_attribute_length, *window, skip)
    except ValueError:
        return ValueError


def assert_same(body: bytes, identity=None, max_attributes=128, max_attribute_length=16384,
                window=(0, rowbinary.U64_MAX)):
    """Both encoders agree on `body`, and again when every other trace id it holds is skipped
    (the spans of sessions owned by another identity)."""
    expected = _assert_same(body, identity, max_attributes, max_attribute_length, window, None)
    if expected is not ValueError and expected[4]:
        skip = set(list(expected[4])[::2]) | {"not-a-trace-id"}
        skipped = _assert_same(body, identity, max_attributes, max_attribute_length, window, skip)
        assert skipped[2:] == expected[2:], "skipped spans are still counted per trace"
        assert skipped[1] == expected[1] - sum(expected[4][t] for t in skip if t in expected[4])
        assert sum(n for _, _, n in skipped[0]) == skipped[1]
    return expected


def _assert_same(body, identity, max_attributes, max_attribute_length, window, skip):
    expected = outcome(rowbinary.encode_request, body, identity, max_attributes,
                       max_attribute_length, window, skip)
    actual = outcome(shellspan_sink_accel.encode_request, body, identity, max_attributes,
                     max_attribute_length, window, skip)
    if expected is ValueError or actual is ValueError:
        assert actual is expected, (body, expected, actual)
    else:
        assert actual[1:] == expected[1:], (actual[1:], expected[1:])
        assert list(actual[4]) == list(expected[4]), "trace ids in order of first appearance"
        assert actual[0] == expected[0]
    return expected


# --- random requests built with the official classes -------------------------------------------

KEYS = ["service.name", *semconv.SINK_OWNED, "a", "b", "k", "é", ""]
SPECIAL_TEXT = ["", "é", "€", "😀", "a\x00b", '"\\/\n\r\t\b\f\x01\x1f\x7f', "x" * 40,
                "é" * 30, "😀" * 20, "a€" * 25]
DOUBLES = [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e300, 5e-324, 1e16, 1e21,
           1e22, 0.1, 1 / 3, 123.0, 1.5e-7, 2.0**63, 1.7976931348623157e308, 2.2250738585072014e-308]
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1),
                  st.sampled_from([-(2**63), 2**63 - 1, 0, -1, 1, 2**31, -(2**31)]))
UINT64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63, 2**64 - 1]))
ENUM = st.one_of(st.integers(-3, 8), st.sampled_from([-(2**31), 2**31 - 1]))

texts = st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL_TEXT),
                  st.text(alphabet="aé€😀", min_size=10, max_size=60))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
doubles = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(DOUBLES))


def _any(kind: str, value) -> AnyValue:
    if kind == "none":
        return AnyValue()
    if kind == "array":
        return AnyValue(array_value=ArrayValue(values=value))
    if kind == "kvlist":
        return AnyValue(kvlist_value=KeyValueList(
            values=[KeyValue(key=k, value=v) for k, v in value]))
    return AnyValue(**{kind: value})


scalar_values = st.one_of(
    st.builds(_any, st.just("string_value"), texts),
    st.builds(_any, st.just("bool_value"), st.booleans()),
    st.builds(_any, st.just("int_value"), INT64),
    st.builds(_any, st.just("double_value"), doubles),
    st.builds(_any, st.just("bytes_value"), st.binary(max_size=12)),
    st.builds(_any, st.just("none"), st.none()),
)
any_values = st.recursive(
    scalar_values,
    lambda children: st.one_of(
        st.builds(_any, st.just("array"), st.lists(children, max_size=4)),
        st.builds(_any, st.just("kvlist"), st.lists(st.tuples(keys, children), max_size=4)),
    ),
    max_leaves=8,
)
key_values = st.one_of(
    st.builds(lambda k, v: KeyValue(key=k, value=v), keys, any_values),
    st.builds(lambda k: KeyValue(key=k), keys),  # no value at all
)
attribute_lists = st.one_of(st.lists(key_values, max_size=6), st.lists(key_values, max_size=20))

valid_trace = st.binary(min_size=16, max_size=16).filter(any)
valid_span = st.binary(min_size=8, max_size=8).filter(any)


def _mostly(valid, invalid):
    """`valid` nine times in ten (st.one_of would pick the rare branch far more often)."""
    return st.integers(0, 9).flatmap(lambda n: valid if n < 9 else invalid)


trace_ids = _mostly(valid_trace, st.sampled_from([b"", b"\x00" * 16, b"\x01" * 15, b"\x01" * 17]))
span_ids = _mostly(valid_span, st.sampled_from([b"", b"\x00" * 8, b"\x01" * 7, b"\x01" * 9]))

events = st.builds(lambda t, n, a: Span.Event(time_unix_nano=t, name=n, attributes=a),
                   UINT64, texts, attribute_lists)
links = st.builds(
    lambda t, s, ts, a, f: Span.Link(trace_id=t, span_id=s, trace_state=ts, attributes=a,
                                     flags=f),
    st.binary(max_size=17), st.binary(max_size=9), texts, attribute_lists,
    st.integers(0, 2**32 - 1))


@st.composite
def spans(draw):
    span = Span(
        trace_id=draw(trace_ids), span_id=draw(span_ids), parent_span_id=draw(st.binary(max_size=9)),
        trace_state=draw(texts), name=draw(texts), kind=draw(ENUM),
        start_time_unix_nano=draw(UINT64), end_time_unix_nano=draw(UINT64),
        attributes=draw(attribute_lists), dropped_attributes_count=draw(st.integers(0, 5)),
        events=draw(st.lists(events, max_size=3)), links=draw(st.lists(links, max_size=3)),
        flags=draw(st.integers(0, 2**32 - 1)),
    )
    if draw(st.booleans()):
        span.status.CopyFrom(Status(code=draw(ENUM), message=draw(texts)))
    return span


@st.composite
def requests(draw):
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        rs = ResourceSpans(schema_url=draw(texts))
        if draw(st.booleans()):
            rs.resource.CopyFrom(Resource(attributes=draw(attribute_lists)))
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            ss = ScopeSpans(schema_url=draw(texts),
                            spans=draw(st.lists(spans(), min_size=1, max_size=4)))
            if draw(st.booleans()):
                ss.scope.CopyFrom(InstrumentationScope(
                    name=draw(texts), version=draw(texts), attributes=draw(attribute_lists)))
            rs.scope_spans.append(ss)
        request.resource_spans.append(rs)
    return request


identities = st.one_of(
    st.none(), st.just({}),
    st.dictionaries(st.one_of(st.sampled_from([*semconv.SINK_OWNED, "a"]), keys),
                    texts, max_size=4))
max_attributes = st.one_of(st.integers(0, 12), st.just(128))
max_lengths = st.one_of(st.integers(0, 48), st.just(16384))
# The accepted time window: everything, random bounds (also empty ones), or one around a day.
windows = st.one_of(st.just((0, rowbinary.U64_MAX)), st.tuples(UINT64, UINT64),
                    st.integers(0, 2**64 - 1 - 2 * rowbinary.NS_PER_DAY).map(
                        lambda t: (t, t + 2 * rowbinary.NS_PER_DAY)))


@pytest.mark.slow
@SETTINGS
@given(requests(), identities, max_attributes, max_lengths, windows)
def test_random_requests_encode_identically(request, identity, max_attrs, max_length, window):
    assert_same(request.SerializeToString(), identity, max_attrs, max_length, window)


# --- the same trees written differently on the wire ---------------------------------------------

_WIRE_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: 1, FieldDescriptor.TYPE_FIXED64: 1,
    FieldDescriptor.TYPE_FIXED32: 5, FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2, FieldDescriptor.TYPE_MESSAGE: 2,
}


def varint(n: int) -> bytes:
    n &= 2**64 - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def ld(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def _noise(rnd: random.Random, depth: int = 0) -> bytes:
    """A field the schema doesn't know, or a known number with a wire type it doesn't use."""
    number = rnd.choice([1, 2, 3, 5, 7, 9, 15, 16, 17, 30, 99, 2**29 - 1])
    wire_type = rnd.choice([0, 1, 5, 3] if number < 17 else [0, 1, 2, 3, 5])
    if wire_type == 0:
        return tag(number, 0) + varint(rnd.getrandbits(rnd.choice([1, 7, 32, 64])))
    if wire_type == 1:
        return tag(number, 1) + rnd.randbytes(8)
    if wire_type == 5:
        return tag(number, 5) + rnd.randbytes(4)
    if wire_type == 2:
        return ld(number, rnd.randbytes(rnd.randrange(6)))
    inner = b"".join(_noise(rnd, depth + 1) for _ in range(rnd.randrange(3) if depth < 3 else 0))
    return tag(number, 3) + inner + tag(number, 4)


def _scalar(fd, value) -> bytes:
    t = fd.type
    if t == FieldDescriptor.TYPE_DOUBLE:
        return struct.pack("<d", value)
    if t == FieldDescriptor.TYPE_FIXED64:
        return struct.pack("<Q", value)
    if t == FieldDescriptor.TYPE_FIXED32:
        return struct.pack("<I", value)
    if t == FieldDescriptor.TYPE_STRING:
        data = value.encode()
        return varint(len(data)) + data
    if t == FieldDescriptor.TYPE_BYTES:
        return varint(len(value)) + value
    return varint(int(value))


def _units(fd, value, rnd: random.Random) -> list[bytes]:
    """One field occurrence as wire bytes, possibly split in two (merged again if singular)."""
    if fd.type != FieldDescriptor.TYPE_MESSAGE:
        return [tag(fd.number, _WIRE_TYPES.get(fd.type, 0)) + _scalar(fd, value)]
    inner = rewrite_units(value, rnd)
    if len(inner) > 1 and rnd.random() < (0.02 if fd.is_repeated else 0.4):
        cut = rnd.randrange(1, len(inner))
        return [ld(fd.number, b"".join(inner[:cut])), ld(fd.number, b"".join(inner[cut:]))]
    return [ld(fd.number, b"".join(inner))]


def rewrite_units(message, rnd: random.Random) -> list[bytes]:
    units: list[list[bytes]] = []
    for fd, value in message.ListFields():
        repeated = fd.is_repeated
        occurrences = [u for v in value for u in _units(fd, v, rnd)] if repeated else _units(
            fd, value, rnd)
        if not repeated and rnd.random() < 0.15:
            # an earlier occurrence: scalars keep the last value, messages merge
            occurrences = _units(fd, value, rnd) + occurrences
        units.append(occurrences)
    if message.DESCRIPTOR.name == "AnyValue" and rnd.random() < 0.3:
        other = rnd.choice([tag(3, 0) + varint(7), ld(1, b"earlier"), tag(2, 0) + b"\x01",
                            ld(5, ld(1, ld(1, b"x"))), ld(6, b""), tag(8, 0) + b"\x03"])
        units.insert(0, [other])  # an earlier member of the oneof: the last one wins
    if rnd.random() < 0.2:
        units.insert(rnd.randrange(len(units) + 1), [_noise(rnd)])
    # fields in any order, each field's occurrences in theirs
    rnd.shuffle(units)
    return [u for occurrences in units for u in occurrences]


@pytest.mark.slow
@SETTINGS
@given(requests(), identities, max_attributes, max_lengths, st.integers(0, 2**32), windows)
def test_rewritten_wire_encodes_identically(request, identity, max_attrs, max_length, seed,
                                            window):
    # a seeded generator, not st.randoms(): its many draws would make Hypothesis shrink the trees
    body = b"".join(rewrite_units(request, random.Random(seed)))
    assert_same(body, identity, max_attrs, max_length, window)


@pytest.mark.slow
@SETTINGS
@given(requests(), st.integers(0, 2**32), st.integers(1, 4))
def test_mutated_bodies_fail_or_agree(request, seed, mutations):
    rnd = random.Random(seed)
    body = bytearray(b"".join(rewrite_units(request, rnd)) or b"\x0a\x00")
    for _ in range(mutations):
        action = rnd.randrange(4)
        pos = rnd.randrange(len(body) + 1)
        if action == 0 and pos < len(body):
            body[pos] = rnd.randrange(256)
        elif action == 1:
            body.insert(pos, rnd.choice([0x00, 0x80, 0xFF, 0x0A, 0x0B, 0x0C, 0x0F, rnd.randrange(256)]))
        elif action == 2 and pos < len(body):
            del body[pos]
        else:
            del body[pos:]
    assert_same(bytes(body), {"enduser.id": "u"}, 8, 24)


@SETTINGS
@given(st.binary(max_size=64))
def test_random_bytes_fail_or_agree(body):
    assert_same(body)


# --- hand-made cases ----------------------------------------------------------------------------

TRACE = b"\x01" * 16
SPAN = b"\x02" * 8


def span_bytes(*extra: bytes) -> bytes:
    return ld(1, TRACE) + ld(2, SPAN) + b"".join(extra)


def request_with_span(span: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    rs = (ld(1, resource) if resource else b"") + ld(2, (ld(1, scope) if scope else b"") + ld(2, span))
    return ld(1, rs)


def nested_arrays(depth: int, leaf: bytes = ld(1, b"x")) -> bytes:
    value = leaf
    for _ in range(depth):
        value = ld(5, ld(1, value))
    return value


def nested_groups(depth: int) -> bytes:
    out = b""
    for _ in range(depth):
        out = tag(21, 3) + out + tag(21, 4)
    return out


EDGE_CASES = {
    "empty body": b"",
    "varint of 10 bytes": request_with_span(span_bytes(tag(6, 0) + b"\xff" * 9 + b"\x01")),
    "varint of 10 bytes, high bits dropped": request_with_span(
        span_bytes(tag(6, 0) + b"\xff" * 9 + b"\x7f")),
    "varint of 11 bytes": request_with_span(span_bytes(tag(6, 0) + b"\xff" * 10 + b"\x01")),
    "overlong varint": request_with_span(span_bytes(tag(6, 0) + b"\x82\x80\x00")),
    "kind beyond int32": request_with_span(span_bytes(tag(6, 0) + varint(2**32 + 2))),
    "status code beyond int32": request_with_span(span_bytes(ld(15, tag(3, 0) + varint(2**33 + 1)))),
    "largest field number": request_with_span(span_bytes(b"\xf8\xff\xff\xff\x0f\x00")),
    "tag above 32 bits": request_with_span(span_bytes(b"\xf8\xff\xff\xff\x1f\x00")),
    "tag of 6 bytes": request_with_span(span_bytes(b"\xf8\xff\xff\xff\x8f\x00\x00")),
    "overlong tag": request_with_span(span_bytes(b"\xaa\x80\x80\x00\x01x")),
    "field number 0": request_with_span(span_bytes(b"\x00\x00")),
    "wire type 6": request_with_span(span_bytes(b"\x0e")),
    "wire type 7": request_with_span(span_bytes(b"\x0f")),
    "stray end group": request_with_span(span_bytes(tag(21, 4))),
    "stray end group in a sub-message": request_with_span(span_bytes(ld(15, tag(1, 4)))),
    "unknown group": request_with_span(span_bytes(tag(21, 3) + tag(1, 0) + b"\x01" + tag(21, 4))),
    "group with a mismatched end": request_with_span(span_bytes(tag(21, 3) + tag(22, 4))),
    "unterminated group": request_with_span(span_bytes(tag(21, 3) + tag(1, 0) + b"\x01")),
    "known field as a group": request_with_span(span_bytes(tag(5, 3) + tag(5, 4))),
    "known field with a wrong wire type": request_with_span(
        span_bytes(tag(7, 0) + b"\x05", tag(5, 5) + b"abcd", tag(9, 1) + b"12345678")),
    "length of 5 bytes": request_with_span(span_bytes(tag(5, 2) + b"\x81\x80\x80\x80\x00x")),
    "length of 6 bytes": request_with_span(span_bytes(tag(5, 2) + b"\x81\x80\x80\x80\x80\x00x")),
    "length past the end": request_with_span(span_bytes(tag(5, 2) + b"\x05abc")),
    "huge length": request_with_span(span_bytes(tag(5, 2) + b"\xff\xff\xff\xff\x0f")),
    "truncated fixed64": request_with_span(span_bytes(tag(7, 1) + b"\x01\x02")),
    "truncated fixed32": request_with_span(span_bytes(tag(16, 5) + b"\x01\x02")),
    "truncated tag": request_with_span(span_bytes(b"\x80")),
    "bad UTF-8 in a name": request_with_span(span_bytes(ld(5, b"\xff"))),
    "surrogate in a name": request_with_span(span_bytes(ld(5, b"\xed\xa0\x80"))),
    "overlong UTF-8": request_with_span(span_bytes(ld(5, b"\xc0\x80"))),
    "code point above U+10FFFF": request_with_span(span_bytes(ld(5, b"\xf4\x90\x80\x80"))),
    "bad UTF-8 in an unknown field": request_with_span(span_bytes(ld(30, b"\xff"))),
    "bad UTF-8 in bytes fields": request_with_span(span_bytes(ld(4, b"\xff"))),
    "bad UTF-8 in schema_url": ld(1, ld(3, b"\xff")),
    "bad UTF-8 in an entity ref": ld(1, ld(1, ld(3, ld(3, b"\xff")))),
    "bad UTF-8 in a rejected span": request_with_span(ld(1, b"\x00") + ld(5, b"\xff")),
    "bad UTF-8 in a scope attribute": request_with_span(
        span_bytes(), scope=ld(3, ld(1, b"\xff"))),
    "bad UTF-8 past the attribute limit": request_with_span(
        span_bytes(*[ld(9, ld(1, b"k%d" % i)) for i in range(200)], ld(9, ld(1, b"\xff")))),
    "string_value_strindex": request_with_span(span_bytes(ld(9, ld(1, b"k") + ld(2, tag(8, 0) + b"\x05")))),
    "strindex in an array": request_with_span(
        span_bytes(ld(9, ld(1, b"k") + ld(2, ld(5, ld(1, tag(8, 0) + b"\x05")))))),
    "merged resources": ld(1, ld(1, ld(1, ld(1, b"service.name") + ld(2, ld(1, b"a"))))
                             + ld(2, ld(2, span_bytes()))
                             + ld(1, ld(1, ld(1, b"service.name") + ld(2, ld(1, b"b"))))),
    "merged arrays": request_with_span(span_bytes(ld(9, ld(1, b"k") + ld(2, nested_arrays(1))
                                                     + ld(2, nested_arrays(1))))),
    "array, int, array": request_with_span(span_bytes(
        ld(9, ld(1, b"k") + ld(2, nested_arrays(1) + tag(3, 0) + b"\x01" + nested_arrays(1))))),
    "arrays 47 deep": request_with_span(span_bytes(ld(9, ld(1, b"k") + ld(2, nested_arrays(47))))),
    "arrays 48 deep": request_with_span(span_bytes(ld(9, ld(1, b"k") + ld(2, nested_arrays(48))))),
    "arrays 48 deep, empty leaf": request_with_span(
        span_bytes(ld(9, ld(1, b"k") + ld(2, nested_arrays(48, b""))))),
    "groups 97 deep": request_with_span(span_bytes(nested_groups(97))),
    "groups 98 deep": request_with_span(span_bytes(nested_groups(98))),
    "duplicate keys and sink-owned keys": request_with_span(
        span_bytes(*[ld(9, ld(1, k) + ld(2, ld(1, v))) for k, v in [
            (b"a", b"1"), (b"enduser.id", b"x"), (b"b", b"2"), (b"a", b"3"),
            (b"shell.auth.verified", b"true"), (b"shell.auth.host", b"forged"),
            (b"shell.auth.key_id", b"forged"), (b"shell.sink.received_time_unix_nano", b"1")]]),
        resource=ld(1, ld(1, b"enduser.id") + ld(2, ld(1, b"r")))),
    "value cut inside a 4-byte character": request_with_span(
        span_bytes(ld(9, ld(1, b"k") + ld(2, ld(1, ("ab" + "😀" * 10).encode()))))),
}


@pytest.mark.parametrize("body", EDGE_CASES.values(), ids=EDGE_CASES.keys())
@pytest.mark.parametrize("limits", [(128, 16384), (3, 5), (0, 0), (2, -3)])
def test_edge_cases(body, limits):
    assert_same(body, {"enduser.id": "alice", "a": "😀😀"}, *limits)


def test_refusals_are_value_errors():
    for body in (b"\xff", b"\x0a\x05ab", EDGE_CASES["bad UTF-8 in a name"],
                 EDGE_CASES["arrays 48 deep"]):
        for fn in (rowbinary.encode_request, shellspan_sink_accel.encode_request):
            with pytest.raises(ValueError):
                fn(body, None, 128, 16384)


def test_counts_and_bytes_like_bodies():
    valid = span_bytes(ld(5, b"ok"))
    body = request_with_span(valid) + request_with_span(ld(1, b"\x00" * 16) + ld(2, SPAN))
    expected = assert_same(body)
    assert expected[1:] == (1, 1, 0, {TRACE.hex(): 1})
    for wrapped in (bytearray(body), memoryview(body)):
        assert shellspan_sink_accel.encode_request(wrapped, None, 128, 16384) == expected


def test_rows_are_grouped_by_day_and_the_window_is_applied():
    day = rowbinary.NS_PER_DAY

    def at(start: int, end: int, name: bytes) -> bytes:
        return (ld(1, TRACE) + ld(2, SPAN) + ld(5, name) + tag(7, 1) + struct.pack("<Q", start)
                + tag(8, 1) + struct.pack("<Q", end))

    spans = [at(5 * day + 1, 5 * day + 2, b"a"), at(2 * day, 2 * day, b"b"),
             at(5 * day + 3, 6 * day, b"c"), at(9 * day, 9 * day, b"too late"),
             at(day - 1, day, b"too early"), at(7 * day, 9 * day, b"ends too late")]
    body = ld(1, ld(2, b"".join(ld(2, s) for s in spans)))
    chunks, rows, bad_ids, out_of_window, traces = assert_same(body, window=(day, 8 * day))
    assert [(d, n) for d, _, n in chunks] == [(5, 2), (2, 1)]
    assert (rows, bad_ids, out_of_window) == (3, 0, 3)
    assert traces == {TRACE.hex(): 3}, "spans outside the window are not counted per trace"
    everything = assert_same(body)
    assert [(d, n) for d, _, n in everything[0]] == [(5, 2), (2, 1), (9, 1), (0, 1), (7, 1)]
