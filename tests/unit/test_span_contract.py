"""The span contract: what each span carries, built by ``shellspan.spans`` and decoded with the
official OTLP protobuf classes, and a guard that every span/attribute name lives in semconv."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shellspan import semconv as sc
from shellspan import spans
from shellspan.otlp import STATUS_ERROR, STATUS_UNSET, encode_request, new_span_id, new_trace_id

REPO = Path(__file__).resolve().parents[2]
TRACE, ROOT = new_trace_id(), new_span_id()


def identity():
    return spans.identity(session_id=TRACE.hex(), shell_type="bash", user="alice", host="h1",
                          pid=42, parent_pid=1, tty="/dev/pts/3", client_address="10.0.0.9",
                          cwd="/srv")


def decoded(span):
    request = ExportTraceServiceRequest.FromString(encode_request([span], {}))
    out = request.resource_spans[0].scope_spans[0].spans[0]
    attrs = {}
    for kv in out.attributes:
        v = kv.value
        attrs[kv.key] = getattr(v, v.WhichOneof("value"))
    return out, attrs


def test_start_span_carries_identity_and_is_a_child_of_the_root():
    span, attrs = decoded(spans.start_span(TRACE, ROOT, identity(), 100, 50))
    assert span.name == sc.SPAN_SESSION_START
    assert span.trace_id == TRACE and span.parent_span_id == ROOT
    assert span.end_time_unix_nano == 100  # never before its start
    assert attrs[sc.SESSION_ID] == TRACE.hex() and attrs[sc.USER_NAME] == "alice"
    assert attrs[sc.PROCESS_PID] == 42 and attrs[sc.CLIENT_ADDRESS] == "10.0.0.9"


def test_command_span_success_failure_and_unknown_ending():
    sid = new_span_id()
    ok, attrs = decoded(spans.command_span(TRACE, ROOT, sid, seq=3, text="ls", name="ls",
                                           cwd="/tmp", start_ns=10, end_ns=20, exit_code=0,
                                           redacted=False))
    assert ok.span_id == sid and ok.parent_span_id == ROOT and ok.name == sc.SPAN_COMMAND
    assert ok.status.code == STATUS_UNSET
    assert attrs[sc.COMMAND_SEQ] == 3 and attrs[sc.EXIT_CODE] == 0
    assert attrs[sc.COMMAND_LINE] == "ls" and attrs[sc.COMMAND_REDACTED] is False

    failed, attrs = decoded(spans.command_span(TRACE, ROOT, sid, seq=4, text="false",
                                               name="false", cwd="/", start_ns=1, end_ns=2,
                                               exit_code=1, redacted=False))
    assert failed.status.code == STATUS_ERROR and attrs[sc.EXIT_CODE] == 1

    raised, attrs = decoded(spans.command_span(TRACE, ROOT, sid, seq=5, text="1/0", name="1",
                                               cwd="/", start_ns=1, end_ns=2, exit_code=1,
                                               redacted=False, error_type="ZeroDivisionError",
                                               message="ZeroDivisionError"))
    assert attrs[sc.EXCEPTION_TYPE] == "ZeroDivisionError"
    assert raised.status.message == "ZeroDivisionError"

    cut, attrs = decoded(spans.command_span(TRACE, ROOT, sid, seq=6, text="sleep 9",
                                            name="sleep", cwd="/", start_ns=1, end_ns=2,
                                            exit_code=None, redacted=False,
                                            message="interrupted"))
    assert sc.EXIT_CODE not in attrs  # never an invented exit code
    assert cut.status.code == STATUS_ERROR
    assert spans.command_failed(None, message="interrupted")
    assert not spans.command_failed(0) and spans.command_failed(2)


def test_session_span_is_the_root_with_totals_and_links():
    parent_trace, parent_span = new_trace_id(), new_span_id()
    attrs_in = identity()
    links: list = []
    spans.parent_link(attrs_in, links, parent_trace, parent_span)
    root, attrs = decoded(spans.session_span(
        TRACE, ROOT, attrs_in, start_ns=5, end_ns=9, reason="hangup", exit_code=129,
        command_count=7, failed_count=2, last_cwd="/var", links=links))
    assert root.span_id == ROOT and root.parent_span_id == b"" and root.name == sc.SPAN_SESSION
    assert attrs[sc.EXIT_REASON] == "hangup" and attrs[sc.EXIT_CODE] == 129
    assert attrs[sc.COMMAND_COUNT] == 7 and attrs[sc.COMMAND_FAILED_COUNT] == 2
    assert attrs[sc.CWD_LAST] == "/var" and attrs[sc.CWD] == "/srv"
    assert attrs[sc.PARENT_SESSION_ID] == parent_trace.hex()
    assert attrs[sc.PARENT_SPAN_ID] == parent_span.hex()
    assert root.links[0].trace_id == parent_trace and root.links[0].span_id == parent_span
    assert root.status.code == STATUS_UNSET

    crashed, attrs = decoded(spans.session_span(
        TRACE, ROOT, identity(), start_ns=5, end_ns=9, reason="crash", exit_code=None,
        command_count=0, failed_count=0, last_cwd="/"))
    assert crashed.status.code == STATUS_ERROR and sc.EXIT_CODE not in attrs


def test_heartbeat_span():
    hb, attrs = decoded(spans.heartbeat_span(TRACE, ROOT, shell_type="zsh", cwd="/x",
                                             command_count=11, now_ns=77))
    assert hb.name == sc.SPAN_HEARTBEAT and hb.parent_span_id == ROOT
    assert hb.start_time_unix_nano == hb.end_time_unix_nano == 77
    assert attrs == {sc.SESSION_ID: TRACE.hex(), sc.SHELL_TYPE: "zsh", sc.CWD: "/x",
                     sc.COMMAND_COUNT: 11}


# A span or attribute name: a dotted lowercase word with a known OpenTelemetry or shellspan root.
_NAME = re.compile(r"^(shell|process|user|host|client|enduser|service|telemetry|exception)"
                   r"\.[a-z_]+(\.[a-z_]+)*$")


def test_every_span_and_attribute_name_is_defined_in_semconv():
    defined = {v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str)}
    offenders = []
    for root in ("instrumentation/src", "sink/src"):
        for path in (REPO / root).rglob("*.py"):
            if path.name == "semconv.py":
                continue
            tree = ast.parse(path.read_text(), str(path))
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef,
                                            ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr)
                          and isinstance(n.body[0].value, ast.Constant)}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
                        and id(node) not in docstrings):
                    text = node.value.decode() if isinstance(node.value, bytes) else node.value
                    if _NAME.match(text):
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {text!r}"
                                         + ("" if text in defined else " (not in semconv)"))
    assert not offenders, "span/attribute names outside semconv.py:\n" + "\n".join(offenders)
