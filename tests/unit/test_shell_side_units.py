"""Unit tests of the shell-side building blocks (no processes, no sink)."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shellspan.config import Config
from shellspan.export import Exporter
from shellspan.otlp import STATUS_ERROR, SpanData, encode_request, new_span_id, new_trace_id
from shellspan_testing.sinkproc import free_port


def test_encoding_round_trips_through_the_official_proto():
    tid, sid, parent = new_trace_id(), new_span_id(), new_span_id()
    span = SpanData(tid, sid, "shell.command", 10, 20, parent,
                    {"s": "é", "i": -3, "b": True, "f": 1.5, "a": ["x", "y"]},
                    status_code=STATUS_ERROR, status_message="boom")
    req = ExportTraceServiceRequest.FromString(encode_request([span], {"service.name": "t"}))
    rs = req.resource_spans[0]
    assert rs.resource.attributes[0].value.string_value == "t"
    out = rs.scope_spans[0].spans[0]
    assert (out.trace_id, out.span_id, out.parent_span_id) == (tid, sid, parent)
    assert (out.start_time_unix_nano, out.end_time_unix_nano, out.name) == (10, 20,
                                                                           "shell.command")
    attrs = {kv.key: kv.value for kv in out.attributes}
    assert attrs["s"].string_value == "é" and attrs["i"].int_value == -3
    assert attrs["b"].bool_value is True and attrs["f"].double_value == 1.5
    assert [v.string_value for v in attrs["a"].array_value.values] == ["x", "y"]
    assert out.status.code == 2 and out.status.message == "boom"




def _span(name: str = "shell.command") -> SpanData:
    return SpanData(new_trace_id(), new_span_id(), name, 1, 2)


def test_exporter_thread_waits_for_the_prompt_and_a_quick_exit_does_not_wait_for_it(tmp_path):
    cfg = Config({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                  "SHELLSPAN_SPOOL_DIR": str(tmp_path), "SHELLSPAN_EXIT_HANDOFF": "0"})
    exp = Exporter(cfg)
    exp.submit(_span("shell.session.start"))
    exp.start(wait_for_ready=True)
    assert not exp._spawned  # nothing competes with the shell before its first prompt
    exp.ready()
    assert exp._spawned
    exp.submit(_span("shell.session"))
    assert exp.flush() is False  # not set up yet: spooled at once, not waited for
    assert exp.spool.size()[0] == 1
    time.sleep(0.3)
    assert exp._sender is None  # and the thread stays idle while the process exits
    exp.submit(_span())  # unless there is more to send (another session in this process)
    assert exp.flush(5.0) is True  # the thread set itself up and spooled it (endpoint down)
    assert exp._sender is not None and exp.spool.size()[0] == 2


