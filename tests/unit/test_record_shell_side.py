"""The shell side of terminal recordings without processes: command marks, the recorder's
channel, limits, redaction across chunks, the log records and span events as the official
protobuf classes read them, the logs exporter's batches, snapshots and the Python capture's
text handling."""

from __future__ import annotations

import os
import subprocess

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shellspan import semconv as sc
from shellspan import snapshot, spans
from shellspan.config import Config
from shellspan.export import LOGS, TRACES, split_batch
from shellspan.otlp import LogData, encode_logs_request, encode_request, new_span_id, new_trace_id
from shellspan.recording import channel, marks, records
from shellspan.recording.limits import DROP, RECORD, Budget, Limits
from shellspan.recording.pycapture import _joined, _terminal_newlines
from shellspan.recording.textredact import StreamRedactor, block_spans, visible
from shellspan.redact import MARK, default_redactor

SID, SPAN, ROOT = "ab" * 16, "cd" * 8, "ef" * 8


# --- marks ---------------------------------------------------------------------------------------

def scan(pieces: list[bytes]) -> tuple[bytes, list]:
    scanner = marks.MarkScanner()
    parts = []
    for piece in pieces:
        parts += scanner.feed(piece)
    parts.append(scanner.flush())
    return (b"".join(p for p in parts if isinstance(p, bytes)),
            [p for p in parts if not isinstance(p, bytes)])


def test_marks_are_removed_and_found_wherever_a_read_cuts_them():
    stream = (b"motd\r\n" + marks.mark("P", SID, ROOT) + b"$ ls\r\n"
              + marks.mark("C", SID, SPAN) + b"\x1b[01;34mdir\x1b[0m\r\n"
              + marks.mark("P", SID, ROOT) + b"$ \x1b")
    text = b"motd\r\n$ ls\r\n\x1b[01;34mdir\x1b[0m\r\n$ \x1b"
    expected = [("P", SID, ROOT), ("C", SID, SPAN), ("P", SID, ROOT)]
    for cut in range(len(stream) + 1):
        for cut2 in range(cut, len(stream) + 1, 5):
            got_text, got_marks = scan([stream[:cut], stream[cut:cut2], stream[cut2:]])
            assert (got_text, got_marks) == (text, expected), (cut, cut2)


def test_what_only_looks_like_a_mark_stays_text_and_a_bad_mark_is_dropped():
    never_ends = marks.PREFIX + b"C;" + b"x" * 200 + b"\r\nmore"
    assert scan([never_ends]) == (never_ends, [])
    bad = marks.PREFIX + b"C;nothex;" + b"0" * 16 + b"\x07after"
    assert scan([bad]) == (b"after", [])
    st_terminated = marks.mark("C", SID, SPAN)[:-1] + b"\x1b\\" + b"x"
    assert scan([st_terminated]) == (b"x", [("C", SID, SPAN)])
    assert marks.parse(b"C;" + b"0" * 32 + b";" + b"1" * 16) is None  # zero session id


def test_the_recorders_session_is_taken_once():
    env = {marks.ENV_SESSION: f"{SID}-{ROOT}"}
    assert marks.adopt_session(env) == (bytes.fromhex(SID), bytes.fromhex(ROOT))
    assert marks.ENV_SESSION not in env and marks.adopt_session(env) is None
    assert marks.adopt_session({marks.ENV_SESSION: "xyz"}) is None


# --- the channel ---------------------------------------------------------------------------------

def test_channel_messages_survive_any_cut_and_a_grown_chunk_keeps_its_length():
    tid, root = new_trace_id(), new_span_id()
    targets = channel.TARGET.pack(0, 7, root)
    buf = bytearray(channel.hello({"pid": 1}) + channel.session(0, tid, root, True))
    start = len(buf)
    buf += channel.data_head(channel.OUTPUT, 123, targets, 1, 3) + b"abc"
    channel.extend_length(buf, start, 2)
    buf += b"de" + channel.end({"status": 0})
    for cut in range(len(buf) + 1):
        reader = channel.Reader()
        got = reader.feed(bytes(buf[:cut])) + reader.feed(bytes(buf[cut:]))
        assert [k for k, _ in got] == [channel.HELLO, channel.SESSION, channel.OUTPUT,
                                       channel.END]
    assert channel.decode_session(got[1][1]) == (0, tid, root, True)
    assert channel.decode_data(got[2][1]) == (123, [(0, 7, root)], b"abcde")
    with pytest.raises(channel.ChannelError):
        channel.Reader().feed(channel.HEADER.pack(channel.OUTPUT, channel.MAX_MESSAGE + 1))


# --- limits --------------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_limits_drop_delay_and_pass():
    clock = Clock()
    drop = Budget(Limits(rate=100, burst=100, max_bytes=250, action="drop"), clock)
    assert drop.take(80) == RECORD and drop.take(80) == DROP  # the burst is spent
    clock.now = 1.0
    assert drop.take(80) == RECORD  # a second refilled it
    clock.now = 10.0
    assert drop.take(80) == RECORD and drop.take(20) == DROP  # 240 of 250 in all
    clock.now = 0.0
    delay = Budget(Limits(rate=100, burst=100, max_bytes=0, action="delay"), clock)
    assert delay.take(100) == RECORD
    assert delay.take(50) == pytest.approx(0.5)  # recorded; the output waits half a second
    passing = Budget(Limits(rate=1, burst=1, max_bytes=1, action="pass"), clock)
    assert passing.take(10**9) == RECORD
    assert Limits.from_env({"SHELLSPAN_RECORD_RATE": "2k", "SHELLSPAN_RECORD_MAX_BYTES": "1m",
                            "SHELLSPAN_RECORD_ACTION": "delay"}).describe() \
        == "delay: 2048 B/s (burst 8388608), 1048576 B in all"
    with pytest.raises(ValueError):
        Limits.from_env({"SHELLSPAN_RECORD_ACTION": "shred"})


# --- redaction across chunks ---------------------------------------------------------------------

def redact_in_pieces(text: str, cuts: list[int]) -> list[tuple[object, str, bool]]:
    stream = StreamRedactor(default_redactor())
    out, last = [], 0
    for i, cut in enumerate([*cuts, len(text)]):
        out += stream.add(text[last:cut], i)
        last = cut
    return out + stream.release()


def test_a_secret_cut_between_reads_is_redacted_and_each_chunk_keeps_its_place():
    token = "ghp_" + "a1B2c3D4e5" * 4
    text = (f"$ export GITHUB_TOKEN={token}\r\nok \x1b[01;31mpassword\x1b[m=hunter22 done\r\n"
            "SSP> mysql -psecret-pw -u root\r\n$ ")
    whole = "".join(t for _, t, _ in redact_in_pieces(text, []))
    assert token not in whole and "hunter22" not in whole and "secret-pw" not in whole
    assert whole.count(MARK) == 3 and "\x1b[01;31mpassword\x1b[m=" + MARK in whole
    for cut in range(1, len(text)):
        for cut2 in range(cut, len(text), 9):
            out = redact_in_pieces(text, [cut, cut2])
            assert [p for p, _, _ in out] == [0, 1, 2]  # every chunk, in order
            assert "".join(t for _, t, _ in out) == whole, (cut, cut2)
            pieces = [text[:cut], text[cut:cut2], text[cut2:]]
            assert [flag for _, _, flag in out] == [t != p for (_, t, _), p in zip(out, pieces)]


def test_chunks_wait_only_for_the_end_of_their_line():
    stream = StreamRedactor(default_redactor(), max_chars=100)
    assert stream.add("no newline yet", 1) == []
    assert [p for p, _, _ in stream.add(" done\r\nnext", 2)] == [1]  # 2 holds "next"
    assert stream.age(5.0) == 5.0
    assert [p for p, _, _ in stream.add("x" * 200, 3)] == [2, 3]  # over max_chars: all go
    assert stream.held == []


def test_terminal_text_is_matched_without_its_escape_sequences():
    raw = "a\x1b[1mb\x1b]0;title\x07c\x07d"
    text, where = visible(raw)
    assert text == "abcd" and [raw[i] for i in where] == list("abcd")
    assert block_spans("drwxr-xr-x 2 root root 4096 \x1b[01;34mdir\x1b[0m\r\n",
                       default_redactor()) == []


# --- records, events and their encoding ----------------------------------------------------------

def test_log_records_follow_the_recording_contract():
    tid, span = new_trace_id(), new_span_id()
    first = records.chunk(tid, span, seq=1, time_ns=5, event="r", body="80x24", observed_ns=6,
                          term="xterm-256color", command="/bin/bash")
    out = records.chunk(tid, span, seq=2, time_ns=7, event="o", body="é\r\n", observed_ns=8,
                        redacted=True)
    drop = records.dropped(tid, span, seq=3, time_ns=9, observed_ns=10, count=4096)
    req = ExportLogsServiceRequest.FromString(
        encode_logs_request([first, out, drop], {sc.SERVICE_NAME: "shellspan"}, "shellspan",
                            "0.1.0"))
    scope_logs = req.resource_logs[0].scope_logs[0]
    assert (scope_logs.scope.name, scope_logs.scope.version) == ("shellspan", "0.1.0")
    got = list(scope_logs.log_records)

    def attrs(rec):
        return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in rec.attributes}

    assert (got[0].trace_id, got[0].span_id, got[0].time_unix_nano,
            got[0].observed_time_unix_nano, got[0].body.string_value) == (tid, span, 5, 6, "80x24")
    assert attrs(got[0]) == {sc.SESSION_ID: tid.hex(), sc.RECORDING_EVENT: "r",
                             sc.RECORDING_SEQ: 1, sc.RECORDING_TERM: "xterm-256color",
                             sc.RECORDING_COMMAND: "/bin/bash"}
    assert got[1].body.string_value == "é\r\n" and attrs(got[1])[sc.RECORDING_REDACTED] is True
    assert attrs(got[2])[sc.RECORDING_DROPPED_BYTES] == 4096
    assert "4096 bytes of output not recorded" in got[2].body.string_value


def test_snapshot_events_are_span_events():
    snap = snapshot.Snapshot("/srv")
    snap.env_changed, snap.env_removed, snap.env_source = {"AWS_PROFILE": "prod"}, ["OLD"], "x"
    snap.git_branch, snap.git_dirty, snap.jobs, snap.cpu_user_s = "main", True, ["9 T vim"], 1.5
    event = spans.snapshot_event("heartbeat", 42, snap)
    tid, root = new_trace_id(), new_span_id()
    hb = spans.heartbeat_span(tid, root, shell_type="bash", cwd="/srv", command_count=1,
                              now_ns=42, events=[event])
    out = ExportTraceServiceRequest.FromString(encode_request([hb], {})) \
        .resource_spans[0].scope_spans[0].spans[0]
    ev = out.events[0]
    assert (ev.name, ev.time_unix_nano) == (sc.EVENT_SNAPSHOT, 42)
    attrs = {kv.key: kv.value for kv in ev.attributes}
    assert attrs[sc.SNAPSHOT_KIND].string_value == "heartbeat"
    assert [v.string_value for v in attrs[sc.ENV_CHANGED].array_value.values] == \
        ["AWS_PROFILE=prod"]
    assert attrs[sc.GIT_DIRTY].bool_value is True and attrs[sc.CPU_USER_S].double_value == 1.5
    assert sc.VENV not in attrs  # unknown facts are left out


def test_log_requests_are_cut_below_the_sinks_body_limit():
    tid, span = new_trace_id(), new_span_id()
    big = [LogData(tid, span, i, i, "x" * 1_000_000) for i in range(10)]
    first, rest = split_batch(big, LOGS)
    assert 1 <= len(first) <= 4 and len(first) + len(rest) == 10
    assert split_batch(big, TRACES) == (big, [])
    cfg = Config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
                  "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x=1"})
    assert cfg.signal("logs") == ("http://c:4318/v1/logs", "x=1", "none")
    assert cfg.signal("traces")[0] == "http://c:4318/v1/traces"
    assert LOGS.spool_dir(cfg) == os.path.join(cfg.spool_dir, "logs")


# --- snapshots -----------------------------------------------------------------------------------

def test_environment_changes_show_names_always_and_values_unless_secret():
    start = {"PATH": "/bin", "HOME": "/root", "OLD": "1", "PWD": "/a"}
    now = {"PATH": "/venv/bin:/bin", "HOME": "/root", "PWD": "/b", "AWS_PROFILE": "prod",
           "DB_PASSWORD": "hunter2", "NOTE": "token ghp_" + "a1B2c3D4e5" * 4, "SHOWN": "x"}
    changed, removed = snapshot.env_changes(start, now, default_redactor().redact,
                                            snapshot.shown_names({}))
    assert removed == ["OLD"] and "PWD" not in changed  # PWD changes by itself
    assert changed["PATH"] == "/venv/bin:/bin" and changed["AWS_PROFILE"] == "prod"
    assert changed["DB_PASSWORD"] == MARK and "ghp_" not in changed["NOTE"]
    shown = snapshot.shown_names({"SHELLSPAN_SNAPSHOT_ENV_SHOW": "DB_PASSWORD"})
    assert snapshot.display_value("DB_PASSWORD", "hunter2", default_redactor().redact,
                                  shown) == "hunter2"
    assert snapshot.parse_environ(b"A=1\0B=x=y\0junk\0") == {"A": "1", "B": "x=y"}


def test_git_branch_and_dirty_state_of_a_real_repository(tmp_path):
    repo = tmp_path / "repo"
    sub = repo / "sub"
    sub.mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "topic"], check=True)
    (repo / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    snap = snapshot.Snapshot(str(sub))
    snapshot.add_git(snap)
    assert (snap.git_branch, snap.git_dirty) == ("topic", False)
    (repo / "f").write_text("2")
    snapshot.add_git(snap)
    assert snap.git_dirty is True
    (repo / "untracked").write_text("u")
    outside = snapshot.Snapshot(str(tmp_path))
    snapshot.add_git(outside)
    assert outside.git_branch is None and outside.git_dirty is None


# --- the Python capture's text -------------------------------------------------------------------

def test_python_writes_become_terminal_text():
    assert _terminal_newlines("a\nb\r\nc") == "a\r\nb\r\nc"
    span_a, span_b = b"a" * 8, b"b" * 8
    joined = _joined([(0, span_a, "hello"), (1000, span_a, "\n"), (2000, span_b, "x"),
                      (10**9, span_b, "y")])
    assert joined == [(0, span_a, "hello\n"), (2000, span_b, "x"), (10**9, span_b, "y")]
