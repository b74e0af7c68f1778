"""The record grammar between the bash/zsh hooks and the agent, and records → spans."""

from __future__ import annotations

import os

import pytest

from shellspan import semconv as sc
from shellspan.otlp import new_span_id
from shellspan.posix import records as r
from shellspan.posix.sessions import SessionTracker, command_name
from shellspan.redact import default_redactor

SID = "5e92bcff05c925facd72ce1d24d7d202"  # fixed: test ids must be the same in every worker
SPAN = new_span_id()
PID = os.getpid()  # a live process, so the tracker's /proc look-ups find something


def start(**kw) -> r.Start:
    fields = dict(pid=PID, session_id=SID, start_us=1_700_000_000_000_000, shell="bash",
                  root_span=new_span_id(), ppid=1, shlvl=2, parent_traceparent="",
                  user="alice", ssh="10.1.2.3 5555 10.0.0.1 22", version="5.2.15", cwd="/srv")
    fields.update(kw)
    return r.Start(**fields)


EXAMPLES = [
    start(),
    r.Command(PID, SID, 3, SPAN, 1_000_001, 1_000_900, 1, (0, 1), "/tmp", "h",
              "12\t echo a\x1fb"),
    r.Begin(PID, SID, 4, SPAN, 2_000_000, "/", "", "for i in 1 2; do\n echo $i\ndone"),
    r.End(PID, SID, 4, 2_000_500, 130, (130,)),
    r.Exit(PID, SID, 3_000_000, 0, "eof"),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda rec: type(rec).__name__)
def test_every_kind_round_trips(record):
    wire = r.encode(record)
    assert wire.endswith(b"\0") and wire.count(b"\0") == 1
    assert r.parse(wire[:-1].decode()) == record


def test_free_text_may_contain_the_separator_and_newlines():
    rec = r.parse("B\x1f42\x1f" + SID + "\x1f1\x1f" + SPAN.hex() + "\x1f5\x1f/\x1f\x1fa\x1fb\nc")
    assert isinstance(rec, r.Begin) and rec.text == "a\x1fb\nc" and rec.flags == ""


def test_unknown_values_become_none_not_errors():
    rec = r.parse(f"C\x1f42\x1f{SID}\x1fx\x1fnot-hex\x1f0\x1f\x1f?\x1f0 - 1\x1f/\x1fh\x1ftext")
    assert rec.seq is None and rec.span is None and rec.start_us is None
    assert rec.end_us is None and rec.status is None and rec.pipestatus == (0, 1)


@pytest.mark.parametrize("raw, why", [
    ("Q\x1f1", "unknown record kind"),
    ("E\x1f1\x1f" + SID + "\x1f1\x1f2", "fields"),
    ("X\x1fpid\x1f" + SID + "\x1f1\x1f0\x1fexit", "bad pid"),
    ("X\x1f-3\x1f" + SID + "\x1f1\x1f0\x1fexit", "bad pid"),
    ("X\x1f1\x1fNOTHEX\x1f1\x1f0\x1fexit", "bad session id"),
])
def test_malformed_records_are_refused_with_a_reason(raw, why):
    with pytest.raises(r.RecordError, match=why):
        r.parse(raw)


def test_reader_splits_a_stream_and_keeps_an_incomplete_tail():
    errors = []
    reader = r.RecordReader(on_error=lambda raw, why: errors.append(why))
    wire = b"".join(r.encode(x) for x in EXAMPLES) + b"Q\x1fjunk\0"
    cut = len(wire) // 2
    got = reader.feed(wire[:cut]) + reader.feed(wire[cut:-3]) + reader.feed(wire[-3:])
    assert got == EXAMPLES
    assert errors == ["unknown record kind 'Q'"]


def test_long_records_are_joined_from_interleaved_pieces():
    long_a = r.Begin(PID, SID, 1, SPAN, 5, "/", "", "a" * 2500 + "é")
    long_b = r.Begin(PID + 1, SID, 2, SPAN, 5, "/", "", "b" * 1000)
    pa = r.pieces(r.encode(long_a), PID).split(b"\0")[:-1]
    pb = r.pieces(r.encode(long_b), PID + 1).split(b"\0")[:-1]
    assert len(pa) == 3 and all(len(p.decode()) <= r.PIECE + 10 for p in pa)
    stream = b"\0".join([pa[0], pb[0], pa[1], pb[1], pa[2]]) + b"\0"
    assert r.RecordReader().feed(stream) == [long_b, long_a]


def test_forgotten_pieces_do_not_prefix_a_later_record():
    reader = r.RecordReader()
    first = r.pieces(r.encode(r.Begin(PID, SID, 1, SPAN, 5, "/", "", "x" * 2000)), PID)
    reader.feed(first.split(b"\0")[0] + b"\0")  # the shell died after one piece
    reader.forget(PID)
    later = r.Exit(PID, SID, 7, 0, "exit")
    assert reader.feed(r.pieces(r.encode(later), PID)) == [later]


def test_history_text_joins_fc_entries():
    assert r.history_text("7\t echo one\n8\t echo two\n") == "echo one\necho two"
    assert r.history_text("no entry number\n") == "no entry number"


@pytest.mark.parametrize("line, name", [
    ("ls -l", "ls"), ("FOO=1 BAR=x make -j2", "make"), ("(cd /; exit 3)", "cd"),
    ("{ echo a; }", "echo"), ("! true", "true"), ("A=1", ""),
])
def test_command_name(line, name):
    assert command_name(line) == name


def tracker(spans, **kw):
    return SessionTracker(lambda span, now: spans.append(span), host="h1",
                          redactor=default_redactor(), heartbeat_s=600, **kw)


def attrs_of(span):
    return span.attributes


def test_records_to_spans_for_a_bash_session():
    spans = []
    t = tracker(spans)
    s = start()
    t.handle(s)
    t.handle(r.Command(PID, SID, 1, SPAN, 1_000, 3_000, 2, (0, 2), "/srv", "h",
                       "5\t export API_TOKEN=abc123secret"))
    t.handle(r.Command(PID, SID, 2, None, 4_000, 5_000, 0, (0,), "/srv", "s", ""))
    t.handle(r.Exit(PID, SID, 9_000, 0, "eof"))
    names = [x.name for x in spans]
    assert names == [sc.SPAN_SESSION_START, sc.SPAN_COMMAND, sc.SPAN_COMMAND, sc.SPAN_SESSION]
    first, hidden, root = spans[1], spans[2], spans[3]
    assert first.span_id == SPAN and first.start_ns == 1_000_000 and first.end_ns == 3_000_000
    assert attrs_of(first)[sc.COMMAND_LINE] == "export API_TOKEN=[REDACTED]"
    assert attrs_of(first)[sc.COMMAND_PIPESTATUS] == [0, 2]
    assert attrs_of(first)[sc.EXIT_CODE] == 2 and attrs_of(first)[sc.COMMAND_NAME] == "export"
    assert attrs_of(hidden)[sc.COMMAND_REDACTED] is True
    assert root.span_id == s.root_span and root.parent_span_id == b""
    assert attrs_of(root)[sc.EXIT_REASON] == "eof" and attrs_of(root)[sc.COMMAND_COUNT] == 2
    assert attrs_of(root)[sc.COMMAND_FAILED_COUNT] == 1
    assert attrs_of(root)[sc.USER_NAME] == "alice" and attrs_of(root)[sc.SHELL_LEVEL] == 2
    assert attrs_of(root)[sc.CLIENT_ADDRESS] == "10.1.2.3"
    assert SID not in t.sessions and SID in t.closed
    t.handle(r.Begin(PID, SID, 3, SPAN, 1, "/", "", "late"))  # after the end: dropped
    assert len(spans) == 4


def test_zsh_begin_end_and_a_command_running_at_exit():
    spans = []
    t = tracker(spans)
    t.handle(start(shell="zsh", parent_traceparent=f"00-{'ab' * 16}-{'cd' * 8}-01"))
    t.handle(r.Begin(PID, SID, 1, SPAN, 1_000, "/a", "", "make"))
    t.handle(r.End(PID, SID, 2, 2_000, 0, ()))  # not the command that began: ignored
    t.handle(r.End(PID, SID, 1, 2_000, 2, (2,)))
    t.handle(r.Begin(PID, SID, 2, None, 3_000, "/a", "", "sleep 100"))
    t.handle(r.Exit(PID, SID, 4_000, 1, "exit"))
    cmds = [x for x in spans if x.name == sc.SPAN_COMMAND]
    assert [attrs_of(c)[sc.EXIT_CODE] for c in cmds] == [2, 1]
    assert [attrs_of(c)[sc.COMMAND_SEQ] for c in cmds] == [1, 2]
    root = spans[-1]
    assert attrs_of(root)[sc.PARENT_SESSION_ID] == "ab" * 16
    assert attrs_of(root)[sc.PARENT_SPAN_ID] == "cd" * 8
    assert root.links and root.links[0].span_id == bytes.fromhex("cd" * 8)


def test_a_session_never_seen_starting_is_adopted():
    spans = []
    t = tracker(spans, user_name=lambda: "login-user")
    t.handle(r.Command(PID, SID, 7, SPAN, 1_000, 2_000, 0, (0,), "/", "h", "1\t ls"))
    assert [x.name for x in spans] == [sc.SPAN_SESSION_START, sc.SPAN_COMMAND]
    a = attrs_of(spans[0])
    assert a[sc.SESSION_ADOPTED] is True and a[sc.USER_NAME] == "login-user"
    assert a[sc.PROCESS_PID] == PID
