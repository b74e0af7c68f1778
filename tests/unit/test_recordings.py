"""Recordings without processes: the asciicast timeline and its markers, the terminal replay's
pacing, the VT emulator's alternate screen, and the logs encoder's refusals."""

from __future__ import annotations

import json

import pytest

from shellspan import semconv
from shellspan_sink import logs_rowbinary
from shellspan_sink.asciicast import CommandMark, Timeline, header
from shellspan_sink.recording_cli import play
from shellspan_sink.terminal import Terminal, parse_size
from shellspan_testing.recordings import (
    RecordedCommand,
    chunks,
    logs_request,
    record,
    recorded_session,
)

S = 10**9


def events(lines: list[str]) -> list[list]:
    return [json.loads(line) for line in lines]


def test_markers_go_before_each_command_first_record_and_times_never_go_back():
    marks = [CommandMark(1, "a", 5 * S, 6 * S, "ls", anchor_seq=3),
             CommandMark(2, "b", 7 * S, 8 * S, "true"),  # printed nothing: placed by time
             CommandMark(3, "c", 20 * S, 21 * S, "exit")]  # after the last record
    timeline = Timeline(0, marks)
    out = []
    out += timeline.record(1, 1 * S, "r", "80x24")
    out += timeline.record(2, 4 * S, "o", "$ ls\r\n")
    out += timeline.record(3, 5 * S + 10, "o", "file\r\n")
    out += timeline.record(4, 3 * S, "o", "late clock")  # a clock step back
    out += timeline.record(5, 9 * S, "o", "$ ")
    out += timeline.finish()
    got = events(out)
    assert [(e[1], e[2]) for e in got] == [
        ("r", "80x24"), ("o", "$ ls\r\n"), ("m", "#1 ls"), ("o", "file\r\n"), ("o", "late clock"),
        ("m", "#2 true"), ("o", "$ "), ("m", "#3 exit")]
    times = [e[0] for e in got]
    assert times == sorted(times)
    assert got[2][0] == 5.0 and got[5][0] == 7.0 and got[7][0] == 20.0


def test_marker_labels_are_one_line_and_bounded():
    mark = CommandMark(7, "x", 0, 0, "for i in 1 2\ndo echo $i\ndone" + " x" * 400)
    assert mark.label.startswith("#7 for i in 1 2 do echo $i done")
    assert "\n" not in mark.label and len(mark.label) <= 310 and mark.label.endswith("…")


def test_header_has_what_players_read():
    head = json.loads(header(100, 30, 1700000000, term="xterm", shell="/bin/zsh", title="t",
                             idle_time_limit=2))
    assert head == {"version": 2, "width": 100, "height": 30, "timestamp": 1700000000,
                    "idle_time_limit": 2, "env": {"TERM": "xterm", "SHELL": "/bin/zsh"},
                    "title": "t"}


def test_replay_keeps_the_pace_caps_idle_time_and_writes_output_only():
    cast = [header(80, 24, 0), json.dumps([0.5, "o", "a"]), json.dumps([0.5, "m", "#1 x"]),
            json.dumps([10.5, "i", "k"]), json.dumps([11.0, "o", "b"]), json.dumps([11.2, "r", "90x30"])]
    written, slept = [], []
    count = play(iter(cast), written.append, speed=2, idle_limit=2, sleep=slept.append)
    assert written == ["a", "b"] and count == 2
    # at 2x: 0.5 s; 10 s of idle capped to 2 s; 0.5 s; 0.2 s
    assert slept == pytest.approx([0.25, 1.0, 0.25, 0.1])
    with pytest.raises(ValueError):
        play(iter(['{"version": 1}']), written.append)


def test_alternate_screen_restores_the_shell_screen():
    term = Terminal(20, 4)
    term.feed("o", "$ vim\r\n")
    term.feed("o", "\x1b[?1049h\x1b[Hediting\x1b[4;1H-- INSERT --")
    assert term.lines() == ["editing", "", "", "-- INSERT --"]
    term.feed("o", "\x1b[?1049l")
    assert term.lines() == ["$ vim", "", "", ""] and term.cursor()["y"] == 1
    term.feed("r", "30x5")
    assert term.size == (30, 5)


def test_resize_text():
    assert parse_size("132x43") == (132, 43)
    assert parse_size("x") is None and parse_size("0x10") is None and parse_size("9999x1") is None


def test_chunks_cut_at_character_boundaries():
    data = "héllo → wörld €".encode()
    for size in range(1, 8):
        parts = chunks(data, size)
        assert b"".join(parts) == data
        assert all(p.decode() for p in parts)


def test_logs_encoder_rejects_records_without_session_ids_and_refuses_garbage():
    rec = recorded_session([RecordedCommand("ls", b"a\r\n")])
    orphan = record(9, b"", b"", 1, "o", "no ids")
    body = logs_request(rec.records + [orphan]).SerializeToString()
    chunks, rows, rejected, outside, traces = logs_rowbinary.encode_request(
        body, {semconv.ENDUSER_ID: "alice"}, 128, 1024)
    assert (rows, rejected, outside) == (len(rec.records), 1, 0)
    assert traces == {rec.records[0].trace_id.hex(): len(rec.records)}
    data = b"".join(c[1] for c in chunks)
    assert b"alice" in data and b"a\r\n" in data
    skipped = logs_rowbinary.encode_request(body, None, 128, 1024, skip=set(traces))
    assert skipped[1:] == (0, 1, 0, traces), "a refused session's records are counted, not written"
    with pytest.raises(ValueError, match="ExportLogsServiceRequest"):
        logs_rowbinary.encode_request(b"\xff\xff\xff", None, 128, 1024)
