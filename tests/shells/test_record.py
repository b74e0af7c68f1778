"""`shellspan record` with real shells and programs in a pty, the real agent and the real sink.

What the user's terminal received (pexpect keeps every byte) is compared with what the sink plays
back: the exported asciicast printed by the real `asciinema cat` must be the same text, and each
chunk must belong to the command that printed it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from shellspan_testing.posix_shell_helpers import PROMPT, ShellEnv, have, rc_files
from shellspan_testing.record_helpers import (
    RecordedTerminal,
    asciinema_cat,
    chunks,
    output_of,
    session_of,
    wait_reading,
    wait_recording,
)
from shellspan_testing.sinkproc import SinkProcess

pytest.importorskip("pexpect", reason="pexpect drives the terminals")
pytestmark = pytest.mark.timeout(300)
PASSWORD = "sekrit-pass-4711"


@pytest.fixture
def terminals():
    started: list[RecordedTerminal] = []

    def spawn(*args, **kwargs) -> RecordedTerminal:
        term = RecordedTerminal(*args, **kwargs)
        started.append(term)
        return term

    yield spawn
    for term in started:
        term.close()


@pytest.fixture
def shell_env(tmp_path, sink):
    env = ShellEnv(tmp_path, sink.otlp_http_endpoint)
    yield env
    env.stop_agent()


def complete(term: RecordedTerminal):
    """The recording holds everything the terminal received."""
    return lambda _header, events: output_of(events) == term.output()


def commands_by_seq(sink, session_id: str, count: int) -> dict[int, dict]:
    detail = sink.wait_for(lambda: (d := sink.session(session_id))
                           and len(d["commands"]) >= count and d["session"]["end_time"] and d,
                           60)
    return {c["seq"]: c for c in detail["commands"]}


def known_to_the_agent(env: ShellEnv, sid: str) -> None:
    """Wait until the agent lists the session (it reads the session's journal once it is up)."""
    env.wait_state(lambda st: sid in [s["session_id"] for s in st.get("sessions", [])], 30)


def span_of(chunk_list, needle: str) -> str:
    found = [span for _seq, span, event, data in chunk_list if event == "o" and needle in data]
    assert found, f"no chunk holds {needle!r}"
    return found[0]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_an_interactive_shell_is_recorded_and_plays_back_as_the_terminal_showed_it(
        shell, sink, shell_env, terminals, tmp_path):
    if not have(shell):
        pytest.skip(f"{shell} is not installed")
    argv = rc_files(shell_env, shell)
    term = terminals(argv, shell_env.env, options=("--input",))
    sid = session_of(term.pid)
    term.run("ls --color=always /")
    term.run("false")
    term.child.sendline(f"vim -u NONE -N {tmp_path / 'note.txt'}")
    term.child.expect_exact("note.txt")
    term.child.send("ihello from vim\x1b")
    term.child.send(":wq\r")
    term.child.expect_exact(PROMPT)
    term.child.setwinsize(40, 120)  # the line editor redraws its prompt: wait for the answer
    term.child.sendline("stty size")
    term.child.expect_exact("40 120")
    term.child.expect_exact(PROMPT)
    read = "read -s -p 'Password: ' pw; echo; echo got ${#pw}" if shell == "bash" \
        else "read -s 'pw?Password: '; echo; echo got ${#pw}"
    term.child.sendline(read)
    term.child.expect_exact("Password: ")
    term.child.sendline(PASSWORD)
    term.child.expect_exact(f"got {len(PASSWORD)}")
    term.child.expect_exact(PROMPT)
    term.child.sendline("head -1")
    term.child.expect_exact("head -1")
    wait_reading(term.pid, "head")  # the line goes to head, with echo on
    term.child.sendline("typed while echo is on")
    term.child.expect_exact(PROMPT)
    assert term.finish("exit 3") == 3  # the command's exit status is the recorder's

    header, events = wait_recording(sink, sid, complete(term))
    assert (header["width"], header["height"]) == (100, 30)
    assert ["r", "120x40"] in [e[1:] for e in events]
    assert asciinema_cat(sink, sid, tmp_path) == term.output()  # the same text, byte for byte
    assert "\x1b]6973" not in term.output()  # the marks never reached the user's terminal
    inputs = "".join(e[2] for e in events if e[1] == "i")
    assert "typed while echo is on" in inputs
    cast = (tmp_path / f"{sid}.cast").read_text()
    assert PASSWORD not in cast and PASSWORD not in term.output()  # typed with echo off

    commands = commands_by_seq(sink, sid, 7)
    by_text = {c["command"]: c for c in commands.values()}
    stored = chunks(sink, sid)
    assert [seq for seq, *_ in stored] == list(range(1, len(stored) + 1))
    assert span_of(stored, "\x1b[01;34m") == by_text["ls --color=always /"]["span_id"]
    assert span_of(stored, "got 16") == by_text[read]["span_id"]
    assert span_of(stored, "\x1b[?1049h") == [c for c in commands.values()
                                               if c["command"].startswith("vim")][0]["span_id"]
    assert by_text["false"]["exit_code"] == 1
    # Prompts belong to the session's root span, not to any command.
    command_spans = {c["span_id"] for c in commands.values()}
    assert span_of(stored, PROMPT) not in command_spans
    # Markers of the playback point at each command (seq order), after its own chunks begin.
    assert [e[2].split(" ", 1)[0] for e in events if e[1] == "m"] == \
        [f"#{seq}" for seq in sorted(commands)]


def test_a_python_repl_is_recorded_statement_by_statement(sink, shell_env, terminals,
                                                          tmp_path):
    term = terminals([os.path.join(os.path.dirname(os.sys.executable), "shellspan"),
                      "python", "-q"], shell_env.env, prompt=">>> ")
    sid = session_of(term.pid)
    term.run("print('hello from python')")
    term.run("1/0")
    term.run("import sys; sys.stderr.write('to stderr\\n')")
    assert term.finish("exit(4)") == 4
    wait_recording(sink, sid, complete(term))
    assert asciinema_cat(sink, sid, tmp_path) == term.output()
    commands = commands_by_seq(sink, sid, 4)
    stored = chunks(sink, sid)
    assert span_of(stored, "hello from python\r\n") == commands[1]["span_id"]
    assert span_of(stored, "ZeroDivisionError") == commands[2]["span_id"]
    assert span_of(stored, "to stderr\r\n") == commands[3]["span_id"]
    assert commands[2]["exit_code"] == 1
    session = sink.session(sid)["session"]
    assert (session["shell_type"], session["exit_code"]) == ("python", 4)


def test_python_shells_record_what_their_statements_print_without_a_recorder(sink, shell_env,
                                                                             tmp_path):
    import pexpect

    shellspan = os.path.join(os.path.dirname(os.sys.executable), "shellspan")
    env = dict(shell_env.env, SHELLSPAN_RECORD_OUTPUT="1")
    child = pexpect.spawn(shellspan, ["python", "-q"], env=env, encoding="utf-8", timeout=30,
                          dimensions=(24, 80))
    try:
        child.expect_exact(">>> ")
        child.sendline("import shellspan; print(shellspan.current_session().session_id)")
        child.expect(r"([0-9a-f]{32})")
        sid = child.match.group(1)
        child.expect_exact(">>> ")
        child.sendline("for i in range(3):")
        child.expect_exact("... ")
        child.sendline("    print('line', i, 'token=ghp_' + 'a1B2c3D4e5' * 4)")
        child.expect_exact("... ")
        child.sendline("")
        child.expect_exact(">>> ")
        child.sendline("1/0")
        child.expect_exact(">>> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)

    def done(_header, events):
        return "ZeroDivisionError" in output_of(events)

    header, events = wait_recording(sink, sid, done)
    assert header["width"] == 80
    text = output_of(events)
    assert ">>> for i in range(3):\r\n...     print(" in text  # the statement as typed
    assert "line 2 token=[REDACTED]\r\n" in text and "ghp_a1B2" not in text
    commands = commands_by_seq(sink, sid, 3)
    stored = chunks(sink, sid)
    assert span_of(stored, "line 0") == commands[2]["span_id"]
    assert span_of(stored, "ZeroDivisionError") == commands[3]["span_id"]
    assert "line 0 token=[REDACTED]" in asciinema_cat(sink, sid, tmp_path)


def test_recorded_while_the_sink_was_down_it_arrives_whole(tmp_path, terminals):
    sink = SinkProcess(tmp_path / "sink")  # its ports are chosen; it is not running yet
    env = ShellEnv(tmp_path, sink.otlp_http_endpoint)
    try:
        term = terminals(rc_files(env, "bash"), env.env)
        sid = session_of(term.pid)
        for i in range(3):
            term.run(f"seq {i * 100} {i * 100 + 150}")
        assert term.finish("exit") == 0
        spool = Path(env.env["SHELLSPAN_SPOOL_DIR"]) / "logs"
        env.wait_state(lambda _s: spool.is_dir() and any(spool.glob("*.otlp")), 30)
        sink.start()  # the agent's probe finds it and sends the spool
        wait_recording(sink, sid, complete(term), timeout=90)
        stored = chunks(sink, sid)
        assert [seq for seq, *_ in stored] == list(range(1, len(stored) + 1))
        sink.wait_for(lambda: sink.session(sid)["session"]["end_time"], 60)
    finally:
        env.stop_agent()
        sink.stop()


def test_nothing_recorded_is_lost_when_the_sink_is_killed(tmp_path, terminals):
    sink = SinkProcess(tmp_path / "sink").start()
    env = ShellEnv(tmp_path, sink.otlp_http_endpoint)
    try:
        term = terminals(rc_files(env, "bash"), env.env)
        sid = session_of(term.pid)
        term.run("seq 1 2000")
        wait_recording(sink, sid, lambda _h, ev: "2000\r\n" in output_of(ev))
        sink.kill()  # SIGKILL: what it acknowledged is in its WAL
        term.run("seq 5000 7000")
        term.run("echo while the sink was away")
        sink.start()
        assert term.finish("exit") == 0
        wait_recording(sink, sid, complete(term), timeout=90)
        stored = chunks(sink, sid)
        assert [seq for seq, *_ in stored] == list(range(1, len(stored) + 1))
    finally:
        env.stop_agent()
        sink.stop()


def test_nested_shells_and_nested_record(sink, shell_env, terminals):
    argv = rc_files(shell_env, "bash")
    term = terminals(argv, shell_env.env)
    outer = session_of(term.pid)
    ask = "echo R=$SHELLSPAN_RECORDER S=$SHELLSPAN_SESSION_ID."
    recorder, session = re.search(r"R=(\S+) S=(\w+)\.", term.run(ask)).groups()
    assert session == outer
    # A recorded session is never recorded twice: the inner `shellspan record` runs the shell.
    term.child.sendline(f"shellspan record -- {' '.join(argv)}")
    term.child.expect_exact(PROMPT)
    inner_recorder, inner = re.search(r"R=(\S+) S=(\w+)\.", term.run(ask)).groups()
    assert inner_recorder == recorder and inner != outer
    term.run("echo nested output $((6 * 7))")
    term.run("exit")
    term.run("echo back in the outer shell")
    assert term.finish("exit") == 0
    wait_recording(sink, outer, complete(term))
    _h, inner_events = wait_recording(sink, inner, lambda _h, ev: "nested output 42\r\n"
                                      in output_of(ev))
    # The inner session's own recording starts with its size and holds its own output...
    assert inner_events[0][1:] == ["r", "100x30"]
    inner_commands = commands_by_seq(sink, inner, 2)
    inner_chunks = chunks(sink, inner)
    assert span_of(inner_chunks, "nested output 42\r\n") in {
        c["span_id"] for c in inner_commands.values()}
    assert "back in the outer shell" not in output_of(inner_events)
    # ...and the outer one has it too, under its command that ran the nested shell.
    outer_commands = {c["command"]: c for c in commands_by_seq(sink, outer, 3).values()}
    nested_cmd = [c for text, c in outer_commands.items() if text.startswith("shellspan record")]
    assert span_of(chunks(sink, outer), "nested output 42\r\n") == nested_cmd[0]["span_id"]


def test_a_command_that_is_no_instrumented_shell_gets_its_session(sink, shell_env, terminals,
                                                                  tmp_path):
    term = terminals(["sh", "-c", "printf 'plain output\\n'; exit 5"], shell_env.env, prompt="")
    assert term.finish(None) == 5
    session = sink.wait_for(lambda: sink.sessions(shell_type="sh", state="ended"), 60)[0]
    sid = session["session_id"]
    wait_recording(sink, sid, complete(term))
    assert (session["shell_type"], session["exit_code"]) == ("sh", 5)
    assert "plain output" in asciinema_cat(sink, sid, tmp_path)


def test_when_the_terminal_goes_away_the_shell_gets_a_hangup(sink, shell_env, terminals):
    term = terminals(rc_files(shell_env, "bash"), shell_env.env)
    sid = session_of(term.pid)
    shell_pid = [int(p) for p in Path(f"/proc/{term.pid}/task/{term.pid}/children")
                 .read_text().split()][0]
    term.run("echo still here")
    os.kill(term.pid, signal.SIGHUP)  # as the terminal emulator closing sends it
    term.child.expect(term.pexpect.EOF)
    sink.wait_for(lambda: not Path(f"/proc/{shell_pid}").exists(), 20)
    session = sink.wait_for(lambda: (s := sink.session(sid)["session"]) and s["end_time"] and s,
                            60)
    assert session["exit_reason"] == "hangup", session


def test_limits_drop_with_a_visible_marker_and_delay_slows_the_output(tmp_path, sink,
                                                                      terminals):
    env = ShellEnv(tmp_path / "drop", sink.otlp_http_endpoint, SHELLSPAN_RECORD_RATE="4k",
                   SHELLSPAN_RECORD_BURST="4k", SHELLSPAN_RECORD_ACTION="drop")
    try:
        term = terminals(rc_files(env, "bash"), env.env)
        sid = session_of(term.pid)
        out = term.run("seq 1 30000")
        assert "30000" in out  # the user sees everything
        assert term.finish("exit") == 0
        _h, events = wait_recording(sink, sid, lambda _h, ev: "exit\r\n" in output_of(ev))
        dropped = [int(m.group(1)) for m in re.finditer(r"\[shellspan: (\d+) bytes of output "
                                                        r"not recorded\]", output_of(events))]
        assert dropped and sum(dropped) > 100_000
        rows = [c for c in chunks(sink, sid) if "not recorded" in c[3]]
        assert rows
    finally:
        env.stop_agent()
    env = ShellEnv(tmp_path / "delay", sink.otlp_http_endpoint, SHELLSPAN_RECORD_RATE="100k",
                   SHELLSPAN_RECORD_BURST="20k", SHELLSPAN_RECORD_ACTION="delay")
    try:
        term = terminals(rc_files(env, "bash"), env.env)
        sid = session_of(term.pid)
        started = time.monotonic()
        term.run("seq 1 50000")  # 288,894 bytes shown (with \r\n)
        took = time.monotonic() - started
        assert took >= (288_894 - 20 * 1024) / (100 * 1024) * 0.9, took
        assert term.finish("exit") == 0
        wait_recording(sink, sid, complete(term))  # everything recorded
    finally:
        env.stop_agent()


def test_snapshots_of_a_recorded_bash_session(sink, shell_env, terminals, tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "feature", str(repo)], check=True)
    term = terminals(rc_files(shell_env, "bash"), shell_env.env, cwd=str(repo))
    sid = session_of(term.pid)
    known_to_the_agent(shell_env, sid)
    term.run("export AWS_PROFILE=prod DEPLOY_TOKEN=hunter2; unset LANG")
    term.run("sleep 1")  # a command that lives long enough for the agent to see it
    assert term.finish("exit") == 0
    snaps = sink.wait_for(lambda: len(s := sink.session(sid).get("snapshots", [])) >= 2
                          and s[-1]["kind"] == "end" and s, 60)
    start, end = snaps[0], snaps[-1]
    assert start["kind"] == "start" and start["cwd"] == str(repo)
    assert start["git_branch"] == "feature" and start["env_changed"] == {}
    assert end["env_changed"]["AWS_PROFILE"] == "prod"
    assert end["env_changed"]["DEPLOY_TOKEN"] == "[REDACTED]"
    assert "LANG" in end["env_removed"]
    assert end["env_source"].startswith("command ") and "sleep" in end["env_source"]
    assert "hunter2" not in str(snaps)
