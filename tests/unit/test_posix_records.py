"""The record grammar between the bash/zsh hooks and the agent, and records → spans."""

from __future__ import annotations

import os

import pytest

from shellspan import semconv as sc
from shellspan.otlp import new_span_id, new_trace_id
from shellspan.posix import journal, state
from shellspan.posix import records as r
from shellspan.posix.sessions import SessionTracker, command_name
from shellspan.redact import default_redactor

SID = "5e92bcff05c925facd72ce1d24d7d202"  # fixed: test ids must be the same in every worker
SPAN = new_span_id()
PID = os.getpid()  # a live process, so the tracker's /proc look-ups find something


def start(**kw) -> r.Start:
    fields = dict(pid=PID, session_id=SID, start_us=1_700_000_000_000_000, shell="bash",
                  root_span=new_span_id(), ppid=1, shlvl=2, parent_traceparent="",
                  user="alice", ssh="10.1.2.3 5555 10.0.0.1 22", version="5.2.15",
                  ancestors=((321, ""), (123, "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")),
                  cwd="/srv")
    fields.update(kw)
    return r.Start(**fields)


EXAMPLES = [
    start(),
    r.Command(PID, SID, 3, SPAN, 1_000_001, 1_000_900, 1, (0, 1), "/tmp", "s", "",
              " echo a\x1fb"),
    r.Begin(PID, SID, 4, SPAN, 2_000_000, "/", "", "16 29", "for i in 1 2; do echo $i; done"),
    r.End(PID, SID, 4, 2_000_500, 130, (130,)),
    r.Exit(PID, SID, 3_000_000, 0, "eof"),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda rec: type(rec).__name__)
def test_every_kind_round_trips(record):
    wire = r.encode(record)
    assert wire.endswith(b"\0") and wire.count(b"\0") == 1
    assert r.parse(wire[:-1].decode()) == record


def test_free_text_may_contain_the_separator_and_newlines():
    rec = r.parse("B\x1f42\x1f" + SID + "\x1f1\x1f" + SPAN.hex() + "\x1f5\x1f/\x1f\x1f\x1fa\x1fb\nc")
    assert isinstance(rec, r.Begin) and rec.text == "a\x1fb\nc" and rec.flags == ""


def test_unknown_values_become_none_not_errors():
    rec = r.parse(f"C\x1f42\x1f{SID}\x1fx\x1fnot-hex\x1f0\x1f\x1f?\x1f0 - 1\x1f/\x1f\x1f\x1ftext")
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


def test_split_takes_whole_records_and_leaves_an_unfinished_tail():
    errors = []
    wire = b"".join(r.encode(x) for x in EXAMPLES) + b"Q\x1fjunk\0"
    got, used = r.split(wire[:-3], lambda raw, why: errors.append(why))
    assert got == EXAMPLES and errors == []  # the bad record is not whole yet
    assert used == len(wire) - len(b"Q\x1fjunk\0")
    rest, used2 = r.split(wire[used:], lambda raw, why: errors.append(why))
    assert rest == [] and used2 == len(b"Q\x1fjunk\0")
    assert errors == ["unknown record kind 'Q'"]


@pytest.mark.parametrize("written, micros", [
    ("1700000000123456", 1_700_000_000_123_456),
    ("1700000000.123456", 1_700_000_000_123_456),
    ("1700000000,5", 1_700_000_000_500_000),  # EPOCHREALTIME in a locale with a decimal comma
    ("1700000000.0", 1_700_000_000_000_000),
    ("0", None), ("", None), ("1.2.3", None),
])
def test_times_in_microseconds_or_seconds_with_a_fraction(written, micros):
    rec = r.parse(f"X\x1f42\x1f{SID}\x1f{written}\x1f0\x1feof")
    assert rec.time_us == micros


def test_a_history_entry_written_as_bash_prints_it():
    raw = (f"B\x1f42\x1f{SID}\x1f1\x1f{SPAN.hex()}\x1f5\x1f/\x1fh\x1f\x1f"
           "  118  echo  two  spaces\n")
    rec = r.parse(raw)
    assert rec.text == "echo  two  spaces" and rec.flags == ""
    hidden = r.parse(raw.replace("\x1fh\x1f", "\x1fsh\x1f").replace("118  echo", "118*  echo"))
    assert hidden.text == " echo  two  spaces" and hidden.flags == "s"


def test_journals_are_read_on_where_the_last_reader_stopped(tmp_path):
    sid2 = new_trace_id().hex()
    first = [r.Begin(PID, SID, 1, SPAN, 10, "/", "", "", "one"), r.End(PID, SID, 1, 30, 0, (0,))]
    other = [r.Begin(PID + 1, sid2, 1, SPAN, 20, "/", "", "", "two")]
    later = r.encode(r.Exit(PID + 1, sid2, 40, 0, "eof"))
    f1, f2 = tmp_path / journal.name(SID, 0), tmp_path / journal.name(sid2, 0)
    f1.write_bytes(b"".join(map(r.encode, first)))
    f2.write_bytes(b"".join(map(r.encode, other)) + later[:7])  # a record being written
    reader = journal.Journals(str(tmp_path))
    assert reader.read() == [first[0], other[0], first[1]]  # in time order across files
    assert reader.read() == []
    offsets = reader.offsets()
    reader.close()
    with f2.open("ab") as f:  # the record is finished while no agent reads
        f.write(later[7:] + b"Q\x1fjunk\0")
    errors = []
    successor = journal.Journals(str(tmp_path), offsets,
                                 on_error=lambda raw, why: errors.append(raw))
    assert successor.read() == [r.parse(later[:-1].decode())] and errors == [b"Q\x1fjunk"]
    successor.end(sid2)
    successor.read()
    assert not f2.exists() and f1.exists()  # an ended session's file goes once read to the end


def test_an_older_generation_goes_once_read(tmp_path):
    f0, f1 = tmp_path / journal.name(SID, 0), tmp_path / journal.name(SID, 1)
    f0.write_bytes(r.encode(r.End(PID, SID, 1, 30, 0, (0,))))
    f1.write_bytes(r.encode(r.Exit(PID, SID, 40, 0, "eof")))
    reader = journal.Journals(str(tmp_path))
    assert [type(x).__name__ for x in reader.read()] == ["End", "Exit"]
    assert not f0.exists() and f1.exists()


@pytest.mark.parametrize("lines", [
    ["for i in 1 2; do", "  echo line-$i", "done"],  # bash adds " " after do, "; " after echo
    ["echo a \\", "b"],  # a backslash continuation: bash removes the backslash
    ["echo 'a", "", "b'"],  # inside quotes bash keeps newlines
    ["echo \"a\\", "b\""],  # a backslash inside quotes stays too
    ["cat <<EOF", "hello", "  there", "EOF"],  # here-document lines keep their newline
    ["if true", "then", "    echo yes", "fi"],
])
def test_join_lines_puts_back_what_bash_history_joined(lines):
    entry, breaks = bash_history_form(lines)
    assert r.join_lines(entry, breaks) == "\n".join(lines)


def bash_history_form(lines):
    """The history entry bash 5 makes of these lines (cmdhist, no lithist) and the notes the
    hooks' PS2 takes before each continuation line. Delimiters as bash chooses them for these
    cases (parse.y, history_delimiting_chars)."""
    entry, breaks, quote, heredoc = lines[0], [], lines[0].count("'") % 2 or lines[0].count('"') % 2, "<<" in lines[0]
    for line in lines[1:]:
        backslash = entry.endswith("\\") and not entry.endswith("\\\\")
        breaks.append(f"{len(entry)}{'b' if backslash else ''}")
        if backslash and not quote:
            entry = entry[:-1] + line
        elif quote or heredoc:
            entry = entry + "\n" + line
        elif entry.split()[-1] in ("do", "then", "else", "{", "|", "&&", "||") or entry in ("if true",):
            entry = entry + " " + line
        else:
            entry = entry + "; " + line
        quote ^= (line.count("'") + line.count('"')) % 2
    return entry, " ".join(breaks)


@pytest.mark.parametrize("line, name", [
    ("ls -l", "ls"), ("FOO=1 BAR=x make -j2", "make"), ("(cd /; exit 3)", "cd"),
    ("{ echo a; }", "echo"), ("! true", "true"), ("A=1", ""),
])
def test_command_name(line, name):
    assert command_name(line) == name


def tracker(spans, **kw):
    return SessionTracker(lambda span, now: spans.append(span), host="h1",
                          redactor=default_redactor(), heartbeat_s=600, **kw)


def begin(seq, text, *, span=SPAN, start=1_000, flags="", breaks="", cwd="/srv"):
    return r.Begin(PID, SID, seq, span, start, cwd, flags, breaks, text)


def attrs_of(span):
    return span.attributes


def test_records_to_spans_for_a_bash_session():
    spans = []
    t = tracker(spans)
    s = start()
    t.handle(s)
    t.handle(begin(1, "export API_TOKEN=abc123secret"))
    t.handle(r.End(PID, SID, 1, 3_000, 2, (0, 2)))
    t.handle(begin(2, " echo hidden", span=None, flags="s"))
    t.handle(r.End(PID, SID, 2, 5_000, 0, (0,)))
    t.handle(begin(3, "", flags="s"))  # SHELLSPAN_HIDDEN_COMMANDS=redact: no text was sent
    t.handle(r.End(PID, SID, 3, 6_000, 0, ()))
    t.handle(r.Command(PID, SID, 4, None, 7_000, 8_000, 3, (3,), "/", "", "", "(exit 3)"))
    t.handle(r.Exit(PID, SID, 9_000, 0, "eof"))
    names = [x.name for x in spans]
    assert names == [sc.SPAN_SESSION_START] + [sc.SPAN_COMMAND] * 4 + [sc.SPAN_SESSION]
    first, hidden, redacted, sub, root = spans[1:]
    assert first.span_id == SPAN and first.start_ns == 1_000_000 and first.end_ns == 3_000_000
    assert attrs_of(first)[sc.COMMAND_LINE] == "export API_TOKEN=[REDACTED]"
    assert attrs_of(first)[sc.COMMAND_PIPESTATUS] == [0, 2]
    assert attrs_of(first)[sc.EXIT_CODE] == 2 and attrs_of(first)[sc.COMMAND_NAME] == "export"
    assert attrs_of(hidden)[sc.COMMAND_LINE] == " echo hidden"
    assert attrs_of(hidden)[sc.COMMAND_HIDDEN] is True
    assert attrs_of(hidden)[sc.COMMAND_REDACTED] is False
    assert attrs_of(redacted)[sc.COMMAND_LINE] == "[REDACTED]"
    assert attrs_of(redacted)[sc.COMMAND_HIDDEN] is True
    assert attrs_of(sub)[sc.EXIT_CODE] == 3 and sc.COMMAND_HIDDEN not in attrs_of(sub)
    assert root.span_id == s.root_span and root.parent_span_id == b""
    assert attrs_of(root)[sc.EXIT_REASON] == "eof" and attrs_of(root)[sc.COMMAND_COUNT] == 4
    assert attrs_of(root)[sc.COMMAND_FAILED_COUNT] == 2
    assert attrs_of(root)[sc.USER_NAME] == "alice" and attrs_of(root)[sc.SHELL_LEVEL] == 2
    assert attrs_of(root)[sc.CLIENT_ADDRESS] == "10.1.2.3"
    assert SID not in t.sessions and SID in t.closed
    t.handle(begin(5, "late"))  # after the end: dropped
    assert len(spans) == 6


@pytest.mark.parametrize("how, status, code, last", [
    ("exit", 3, 3, (3, "")),  # the exit builtin ends with the shell, with its status
    ("hangup", 129, 129, (None, "interrupted")),  # the terminal closed under a command
    ("signal", 0, None, (None, "interrupted")),  # a signal the hook could not name
])
def test_the_command_running_when_the_shell_ends(how, status, code, last):
    spans = []
    t = tracker(spans)
    t.handle(start(shell="zsh", parent_traceparent=f"00-{'ab' * 16}-{'cd' * 8}-01"))
    t.handle(begin(1, "make"))
    t.handle(r.End(PID, SID, 2, 2_000, 0, ()))  # not the command that began: ignored
    t.handle(r.End(PID, SID, 1, 2_000, 2, (2,)))
    t.handle(begin(2, "exit 3" if how == "exit" else "sleep 100", span=None, start=3_000))
    t.handle(r.Exit(PID, SID, 4_000, status, how))
    cmds = [x for x in spans if x.name == sc.SPAN_COMMAND]
    assert [attrs_of(c).get(sc.EXIT_CODE) for c in cmds] == [2, last[0]]
    assert cmds[1].status_message == last[1] and cmds[1].end_ns == 4_000_000
    root = spans[-1]
    assert attrs_of(root)[sc.EXIT_REASON] == how and attrs_of(root).get(sc.EXIT_CODE) == code
    assert attrs_of(root)[sc.PARENT_SESSION_ID] == "ab" * 16
    assert attrs_of(root)[sc.PARENT_SPAN_ID] == "cd" * 8
    assert root.links and root.links[0].span_id == bytes.fromhex("cd" * 8)


def test_exec_ends_the_old_session_and_the_new_one_links_to_its_command():
    spans = []
    t = tracker(spans)
    t.handle(start())
    exec_span = new_span_id()
    t.handle(begin(1, "exec bash", span=exec_span))
    new_sid = new_trace_id().hex()
    t.handle(start(session_id=new_sid, parent_traceparent=f"00-{SID}-{exec_span.hex()}-01"))
    old_root = next(x for x in spans if x.name == sc.SPAN_SESSION)
    assert attrs_of(old_root)[sc.EXIT_REASON] == "exec" and sc.EXIT_CODE not in attrs_of(old_root)
    exec_cmd = next(x for x in spans if x.name == sc.SPAN_COMMAND)
    assert exec_cmd.span_id == exec_span and sc.EXIT_CODE not in attrs_of(exec_cmd)
    assert exec_cmd.status_message == ""
    new_start = spans[-1]
    assert attrs_of(new_start)[sc.PARENT_SPAN_ID] == exec_span.hex()
    assert set(t.sessions) == {new_sid}


def test_a_multi_line_command_and_a_long_one():
    spans = []
    t = tracker(spans)
    t.handle(start())
    t.handle(begin(1, "for i in 1 2; do echo $i; done", breaks="16 24"))
    t.handle(r.End(PID, SID, 1, 2_000, 0, (0,)))
    long = "echo " + "é" * 40_000  # 80,005 bytes
    t.handle(begin(2, long))
    t.handle(r.End(PID, SID, 2, 3_000, 0, (0,)))
    loop, cut = [x for x in spans if x.name == sc.SPAN_COMMAND]
    assert attrs_of(loop)[sc.COMMAND_LINE] == "for i in 1 2; do\necho $i\ndone"
    text = attrs_of(cut)[sc.COMMAND_LINE]
    assert attrs_of(cut)[sc.COMMAND_LINE_LENGTH] == len(long.encode())
    assert text.startswith("echo éé") and text.endswith("[cut: 80005 bytes]")
    assert len(text.split("…")[0].encode()) <= 64 * 1024


def test_a_session_never_seen_starting_is_adopted():
    spans = []
    t = tracker(spans, user_name=lambda: "login-user")
    t.handle(r.Command(PID, SID, 7, SPAN, 1_000, 2_000, 0, (0,), "/", "", "", "ls"))
    assert [x.name for x in spans] == [sc.SPAN_SESSION_START, sc.SPAN_COMMAND]
    a = attrs_of(spans[0])
    assert a[sc.SESSION_ADOPTED] is True and a[sc.USER_NAME] == "login-user"
    assert a[sc.PROCESS_PID] == PID


def test_state_keeps_a_running_command_for_the_next_agent(tmp_path):
    spans = []
    t = tracker(spans)
    t.handle(start())
    t.handle(begin(1, "sleep 100"))
    state.write(str(tmp_path), {"sessions": [state.session_entry(t.sessions[SID])]})
    again = state.sessions(state.read(str(tmp_path)))
    assert len(again) == 1 and again[0].pending == begin(1, "sleep 100")
    t2 = tracker(spans)
    t2.register(again[0])
    t2.handle(r.End(PID, SID, 1, 5_000, 0, (0,)))  # the end reaches the next agent
    assert attrs_of(spans[-1])[sc.COMMAND_LINE] == "sleep 100"
    assert attrs_of(spans[-1])[sc.EXIT_CODE] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another user needs root")
def test_a_journal_of_another_user_is_left_alone_and_said_once(tmp_path):
    planted = tmp_path / journal.name(SID, 0)
    planted.write_bytes(r.encode(r.Exit(PID, SID, 40, 0, "eof")))
    os.chown(planted, 65534, 65534)
    said = []
    reader = journal.Journals(str(tmp_path), log=said.append)
    assert reader.read() == [] and reader.read() == []
    assert len(said) == 1 and "not a file of this user" in said[0] and planted.exists()
