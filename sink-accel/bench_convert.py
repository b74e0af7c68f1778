"""Micro-benchmark: OTLP request bytes → RowBinary, reference Python encoder vs the compiled one.

Usage: python sink-accel/bench_convert.py [--spans 512] [--repeat 7]
Prints µs per span for each encoder (best of `repeat` runs) and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from shellspan_sink.rowbinary import encode_request as python_encode

try:
    from shellspan_sink_accel import encode_request as rust_encode
except ImportError:
    rust_encode = None


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def realistic_request(n_spans: int) -> bytes:
    """A shell session's worth of command spans: 8 string attributes each, like the SDK sends."""
    resource = Resource(attributes=[
        kv("service.name", "shellspan"), kv("host.name", "build-host-17"),
        kv("process.pid", "4242"), kv("telemetry.sdk.language", "python"),
        kv("telemetry.sdk.version", "1.27.0"),
    ])
    trace_id = os.urandom(16)
    root = os.urandom(8)
    spans = []
    start = 1_732_500_000_000_000_000
    for i in range(n_spans):
        spans.append(Span(
            trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root,
            name="command", kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start + i * 1_000_000, end_time_unix_nano=start + i * 1_000_000 + 523_000,
            attributes=[
                kv("shell.command", f"git status --short --branch {i}"),
                kv("shell.command.name", "git"), kv("shell.cwd", "/home/user/src/project"),
                kv("shell.exit_code", "0"), kv("shell.session.id", "3f2a9c1e-session"),
                kv("shell.kind", "bash"), kv("shell.tty", "/dev/pts/3"),
                kv("user.name", "user"),
            ],
            status=Status(code=Status.STATUS_CODE_OK),
        ))
    scope = ScopeSpans(scope=InstrumentationScope(name="shellspan", version="0.1.0"), spans=spans)
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])])
    return request.SerializeToString()


def best_us_per_span(fn, body: bytes, n_spans: int, repeat: int) -> float:
    identity = {"enduser.id": "alice", "shell.auth.verified": "true"}
    loops = 1
    while True:  # enough loops for ~0.2 s per measurement
        t0 = time.perf_counter()
        for _ in range(loops):
            fn(body, identity, 128, 16384)
        elapsed = time.perf_counter() - t0
        if elapsed > 0.2:
            break
        loops *= 2
    best = elapsed / loops
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn(body, identity, 128, 16384)
        best = min(best, (time.perf_counter() - t0) / loops)
    return best / n_spans * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    body = realistic_request(args.spans)
    print(f"request: {args.spans} spans, {len(body)} bytes")
    py = best_us_per_span(python_encode, body, args.spans, args.repeat)
    print(f"python : {py:8.3f} us/span  ({1e6 / py:12,.0f} spans/s on one core)")
    if rust_encode is None:
        print("rust   : shellspan_sink_accel is not installed")
        return 0
    if rust_encode(body, {}, 128, 16384) != python_encode(body, {}, 128, 16384):
        print("rust   : OUTPUT DIFFERS from the reference")
        return 1
    rs = best_us_per_span(rust_encode, body, args.spans, args.repeat)
    print(f"rust   : {rs:8.3f} us/span  ({1e6 / rs:12,.0f} spans/s on one core)")
    print(f"ratio  : {py / rs:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
