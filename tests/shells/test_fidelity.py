"""The fidelity matrix: every scenario is typed into real bash and zsh through a pty, what was
typed (and what the shell did) is the ground truth, and the stored session is compared with it
field by field through the sink's API: command text, exit code, working directory, duration,
order, session state, exit reason and code, and the parent link of nested sessions.

The endings table of docs/posix-shells.md is proved here, one test per row."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shellspan_testing.background import running, wait_for
from shellspan_testing.posix_shell_helpers import PROMPT, SHELLS, Shell, ShellEnv, have, rc_files

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

ALL_SHELLS = [pytest.param(s, marks=pytest.mark.skipif(not have(s), reason=f"{s} not installed"))
              for s in SHELLS]

# Debian's default bash settings (/etc/skel/.bashrc) and their zsh counterparts.
HISTORY = {"bash": "HISTCONTROL=ignoreboth\n",
           "zsh": "setopt histignorespace histignoredups\n"}


@pytest.fixture(scope="module")
def sink(module_sink):
    return module_sink


@dataclass
class Cmd:
    """What a command should look like once stored."""

    text: str
    exit: int | None = 0  # None: no exit code (cut short, or replaced by exec)
    cwd: str = ""  # "" : the directory the shell started in
    min_ms: float = 0.0
    hidden: bool = False
    message: str = ""  # the span's status message ("interrupted")
    length: int | None = None  # the original length of a cut command line


@dataclass
class Session:
    """What a session should look like once stored."""

    commands: list[Cmd]
    reason: str
    code: int | None
    parent: tuple[str, str] | None = None  # (session id, command span id)
    extra: dict = field(default_factory=dict)


class Run:
    """One scenario: a shell in a pty, its environment and working directory."""

    def __init__(self, sink, tmp: Path, shell: str, before: str = "", **env: str) -> None:
        self.sink, self.shell = sink, shell
        self.env = ShellEnv(tmp / "env", sink.otlp_http_endpoint, **env)
        self.work = tmp / "work"
        (self.work / "sub").mkdir(parents=True)
        self.argv = rc_files(self.env, shell, before=HISTORY[shell] + before)
        self.sh = Shell(self.argv, self.env.env, cwd=self.work)

    def run(self, line: str) -> str:
        return self.sh.run(line)

    def lines(self, lines: list[str]) -> None:
        """A command typed over several lines (continuation prompts between them)."""
        for line in lines[:-1]:
            self.sh.child.sendline(line)
            self.sh.child.expect_exact("> ")
        self.sh.child.sendline(lines[-1])
        self.sh.child.expect_exact(PROMPT)

    def connected(self) -> None:
        """Wait until the agent has this shell's session (it reads the session's journal once
        it is up)."""
        self.env.wait_state(lambda st: any(s.get("pid") == self.sh.pid
                                           for s in st.get("sessions", [])), 15)

    def wait_gone(self, *pids: int, timeout: float) -> float:
        """Seconds until every pid is gone (reaped or a zombie)."""
        t0 = time.monotonic()
        wait_for(lambda: not any(running(p) for p in pids), timeout, f"{pids} to end", 0.01,
                 lambda: [p for p in pids if running(p)])
        return time.monotonic() - t0

    def stored(self, n: int = 1) -> list[dict]:
        """The sessions of this run, once ended, oldest first."""
        user = self.env.user

        def find():
            found = [s for s in self.sink.sessions(user=user, limit=20) if s["user_name"] == user]
            return found if len(found) >= n and all(s["state"] == "ended" for s in found) else None
        found = self.sink.wait_for(find, 60)
        return sorted(found, key=lambda s: s["start_time"])

    def close(self) -> None:
        self.sh.close()
        self.env.stop_agent()


@pytest.fixture
def run(sink, tmp_path):
    runs: list[Run] = []

    def make(shell: str, before: str = "", **env: str) -> Run:
        r = Run(sink, tmp_path / f"r{len(runs)}", shell, before, **env)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.close()


def check(r: Run, stored: dict, want: Session) -> dict:
    """Compare one stored session with what should be there, field by field."""
    sink = r.sink
    sid = stored["session_id"]
    detail = sink.wait_for(lambda: (d := sink.session(sid))
                           and len(d["commands"]) >= len(want.commands) and d, 30)
    got = detail["commands"]
    assert stored["state"] == "ended"
    assert (stored["exit_reason"], stored["exit_code"]) == (want.reason, want.code), stored
    assert [c["command"] for c in got] == [w.text for w in want.commands]
    assert [c["exit_code"] for c in got] == [w.exit for w in want.commands]
    assert [c["seq"] for c in got] == sorted(c["seq"] for c in got)  # in the order typed
    assert len({c["seq"] for c in got}) == len(got)
    starts = [c["start_time"] for c in got]
    assert starts == sorted(starts)
    for c, w in zip(got, want.commands):
        assert c["cwd"] == (w.cwd or str(r.work)), (c, w)
        assert w.min_ms <= c["duration_ms"] < 60_000, (c, w)
        failed = bool(w.exit) or bool(w.message)
        assert c["status"] == ("Error" if failed else "Unset"), (c, w)
    extras = sink.sql(
        "SELECT SpanAttributes['shell.command.hidden'], SpanAttributes['shell.command.length'],"
        " StatusMessage FROM shellspan.otel_traces "
        f"WHERE TraceId = '{sid}' AND SpanName = 'shell.command' "
        "ORDER BY toUInt64OrZero(SpanAttributes['shell.command.seq'])")["rows"]
    assert [row[0] == "true" for row in extras] == [w.hidden for w in want.commands]
    assert [int(row[1]) if row[1] else None for row in extras] == [
        w.length for w in want.commands]
    assert [row[2] for row in extras] == [w.message for w in want.commands]
    attrs = detail["session"]["attributes"]
    parent = (attrs.get("shell.parent.session.id"), attrs.get("shell.parent.span_id"))
    assert parent == (want.parent or (None, None)), attrs
    return detail


# --- what was typed, and how it ended ---------------------------------------------------------

@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ordinary_commands(run, shell):
    r = run(shell)
    sub = str(r.work / "sub")
    r.run("echo one")
    r.run("false")
    r.run("true | false | true")
    r.run("cd sub")
    r.run("pwd")
    r.run("sleep 0.3")
    r.run("(exit 7)")
    r.run("f() { return 4; }")
    r.run("f")
    r.sh.child.sendline("exit 2")
    assert r.sh.exit_status()[0] == 2
    check(r, r.stored()[0], Session([
        Cmd("echo one"), Cmd("false", 1), Cmd("true | false | true"), Cmd("cd sub"),
        Cmd("pwd", cwd=sub), Cmd("sleep 0.3", cwd=sub, min_ms=300), Cmd("(exit 7)", 7, sub),
        Cmd("f() { return 4; }", cwd=sub), Cmd("f", 4, sub), Cmd("exit 2", 2, sub)],
        "exit", 2))


@pytest.mark.parametrize("shell", ALL_SHELLS)
@pytest.mark.parametrize("policy", ["record", "redact"])
def test_history_settings_change_nothing_recorded(run, shell, policy):
    """Duplicates, a leading space, HISTIGNORE (HISTORY_IGNORE), history off: every command is
    recorded as typed; a leading-space one is marked hidden (and its text dropped when the
    policy says redact); the user's own history stays what their settings make it."""
    ignore = ("HISTIGNORE='ls *:pwd'\n" if shell == "bash" else "HISTORY_IGNORE='(ls *|pwd)'\n")
    lines = ["echo dup", "echo dup", " echo hidden", "ls /", "pwd", "echo last"]
    if shell == "bash":
        lines[5:5] = ["set +o history", "echo while-off", "set -o history"]
    r = run(shell, ignore, SHELLSPAN_HIDDEN_COMMANDS=policy)
    for line in lines:
        r.run(line)
    history = r.run("fc -l -20" if shell == "zsh" else "history")
    plain_env = ShellEnv(r.env.root / "plain", r.env.env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    plain = Shell(rc_files(plain_env, shell, instrumented=False,
                           before=HISTORY[shell] + ignore), plain_env.env, cwd=r.work)
    try:
        for line in lines:
            plain.run(line)
        assert history == plain.run("fc -l -20" if shell == "zsh" else "history")
    finally:
        plain.close()
    r.sh.child.sendeof()
    r.sh.exit_status()
    hidden_text = " echo hidden" if policy == "record" else "[REDACTED]"
    want = [Cmd(line) for line in lines] + [Cmd("fc -l -20" if shell == "zsh" else "history")]
    want[2] = Cmd(hidden_text, hidden=True)
    check(r, r.stored()[0], Session(want, "eof", 0))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_multi_line_commands_keep_their_lines(run, shell):
    r = run(shell)
    loop = ["for i in 1 2; do", "    echo line-$i", "done"]
    backslash = ["echo a \\", "  b"]
    heredoc = ["cat <<EOF", "hello", "  there", "EOF"]
    quoted = ["echo 'one", "", "two'"]
    for lines in (loop, backslash, heredoc, quoted):
        r.lines(lines)
    r.sh.child.sendline("exit")
    r.sh.exit_status()
    check(r, r.stored()[0], Session(
        [Cmd("\n".join(x)) for x in (loop, backslash, heredoc, quoted)] + [Cmd("exit")],
        "exit", 0))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_lines_that_never_ran_are_not_commands(run, shell):
    """A syntax error, Ctrl-C at a continuation prompt, a cancelled quote: nothing ran, so
    nothing is recorded, and the next command is recorded alone."""
    r = run(shell)
    r.run("echo )")
    r.run("echo after-error")
    r.sh.child.sendline("for i in 1; do")
    r.sh.child.expect_exact("> ")
    r.sh.child.sendintr()
    r.sh.child.expect_exact(PROMPT)
    r.run("echo after-ctrl-c")
    r.sh.child.sendline("echo 'open")
    r.sh.child.expect_exact("> ")
    r.sh.child.sendintr()
    r.sh.child.expect_exact(PROMPT)
    r.run("echo after-quote")
    r.sh.child.sendline("exit")
    r.sh.exit_status()
    check(r, r.stored()[0], Session(
        [Cmd("echo after-error"), Cmd("echo after-ctrl-c"), Cmd("echo after-quote"),
         Cmd("exit")], "exit", 0))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_long_commands_whole_up_to_64_kib_then_cut_with_a_mark(run, shell):
    r = run(shell)
    whole = "echo " + "x" * 20_000 + " | wc -c"
    long = "echo " + "é" * 36_000 + " | wc -c"  # 72,014 bytes
    assert r.sh.paste(whole).strip().endswith("20001")
    assert r.sh.paste(long).strip().endswith("72001")
    r.sh.child.sendline("exit")
    r.sh.exit_status()
    kept = long.encode()[:64 * 1024].decode("utf-8", "ignore")
    check(r, r.stored()[0], Session(
        [Cmd(whole), Cmd(kept + f"…[cut: {len(long.encode())} bytes]", length=len(long.encode())),
         Cmd("exit")], "exit", 0))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_background_job_and_ctrl_c(run, shell):
    r = run(shell)
    r.run("true | false")
    r.run("sleep 0.2 &")
    r.run("wait")
    r.sh.child.sendline("sleep 30")
    r.sh.wait_child("sleep")
    r.sh.child.sendintr()
    r.sh.child.expect_exact(PROMPT)
    r.sh.child.sendline("exit")
    r.sh.exit_status()
    detail = check(r, r.stored()[0], Session(  # `exit` exits with $?: Ctrl-C's 130
        [Cmd("true | false", 1), Cmd("sleep 0.2 &"), Cmd("wait"),
         Cmd("sleep 30", 130), Cmd("exit", 130)], "exit", 130))
    sid = detail["session"]["session_id"]
    pipes = r.sink.sql("SELECT SpanAttributes['shell.command.pipestatus'] FROM "
                       f"shellspan.otel_traces WHERE TraceId = '{sid}' AND SpanName = "
                       "'shell.command' ORDER BY toUInt64OrZero(SpanAttributes"
                       "['shell.command.seq'])")["rows"]
    assert [p[0] for p in pipes][:2] == ["[0,1]", ""]  # no stale status for `sleep 0.2 &`


# --- endings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_ctrl_d(run, shell):
    r = run(shell)
    r.run("echo one")
    r.sh.child.sendeof()
    assert r.sh.exit_status()[0] == 0
    check(r, r.stored()[0], Session([Cmd("echo one")], "eof", 0))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_terminal_closed_during_a_command(run, shell):
    """As without the hooks: the shell and its job die at once; the command is interrupted."""
    r = run(shell)
    plain_env = ShellEnv(r.env.root / "plain", r.env.env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    plain = Shell(rc_files(plain_env, shell, instrumented=False), plain_env.env)
    for sh in (plain, r.sh):  # an uninstrumented shell first: what the hooks must not change
        if sh is r.sh:
            r.run("echo one")
            r.env.wait_agent()
        sh.child.sendline("sleep 100")
        sleep_pid = sh.wait_child("sleep")
        os.close(sh.child.child_fd)  # the terminal goes away: the kernel hangs it up
        sh.child.closed = True
        assert r.wait_gone(sh.pid, sleep_pid, timeout=1.0) < 1.0
    code = 129 if shell == "bash" else 1  # bash dies of SIGHUP; zsh exits with status 1
    check(r, r.stored()[0], Session(
        [Cmd("echo one"), Cmd("sleep 100", None, message="interrupted")], "hangup", code))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_terminal_closed_at_the_prompt(run, shell):
    """The terminal goes away while the shell waits at its prompt: it ends at once, hangup."""
    r = run(shell)
    r.run("echo one")
    r.env.wait_agent()
    os.close(r.sh.child.child_fd)  # the kernel hangs the terminal up
    r.sh.child.closed = True
    assert r.wait_gone(r.sh.pid, timeout=1.0) < 1.0
    code = 129 if shell == "bash" else 1  # bash dies of SIGHUP; zsh exits with status 1
    check(r, r.stored()[0], Session([Cmd("echo one")], "hangup", code))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_sighup_during_a_command(run, shell):
    """SIGHUP (or another fatal signal) sent to the shell while a command runs, the terminal
    still open: the shell hangs up its job and exits; the hooks cannot name the signal."""
    r = run(shell)
    r.run("echo one")
    r.sh.child.sendline("sleep 100")
    sleep_pid = r.sh.wait_child("sleep")
    os.kill(r.sh.pid, signal.SIGHUP)
    r.sh.exit_status()
    r.wait_gone(sleep_pid, timeout=5.0)
    check(r, r.stored()[0], Session(
        [Cmd("echo one"), Cmd("sleep 100", None, message="interrupted")], "signal", None))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_sighup_at_the_prompt(run, shell):
    """A SIGHUP sent to a shell that waits at its prompt, its terminal still open, cannot be
    told from Ctrl-D by the hooks: eof (with the shell's status)."""
    r = run(shell)
    r.run("echo one")
    r.env.wait_agent()
    os.kill(r.sh.pid, signal.SIGHUP)
    r.sh.exit_status()
    check(r, r.stored()[0], Session([Cmd("echo one")], "eof", 0 if shell == "bash" else 1))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_kill_9(run, shell):
    """The shell vanishes without its exit hook: orphaned (its terminal is still there), no
    exit code; the command it was running is kept, interrupted."""
    r = run(shell)
    r.run("echo one")
    # (the agent must know the shell while it lives, to tell orphaned from a quick exit)
    r.connected()
    r.sh.child.sendline("kill -9 $$")
    assert r.sh.exit_status()[1] == signal.SIGKILL
    check(r, r.stored()[0], Session(
        [Cmd("echo one"), Cmd("kill -9 $$", None, message="interrupted")],
        "orphaned", None))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_exec(run, shell):
    """`exec` of a new shell: the old session ends `exec` (the exec command has no exit code);
    the new shell is recorded, linked to that command."""
    r = run(shell)
    r.run("echo before")
    line = "exec " + " ".join(r.argv)
    r.run(line)
    r.run("echo after")
    r.sh.child.sendline("exit 5")
    assert r.sh.exit_status()[0] == 5
    old, new = r.stored(2)
    detail = check(r, old, Session([Cmd("echo before"), Cmd(line, None)], "exec", None))
    exec_span = detail["commands"][1]["span_id"]
    check(r, new, Session([Cmd("echo after"), Cmd("exit 5", 5)], "exit", 5,
                          parent=(old["session_id"], exec_span)))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_ending_exec_of_another_program(run, shell):
    """`exec` of a program that is not an instrumented shell: the session ends when that
    program does, without the exit hook: orphaned, the exec command interrupted."""
    r = run(shell)
    r.run("echo before")
    r.sh.child.sendline("exec sleep 0.5")
    assert r.sh.exit_status()[0] == 0
    check(r, r.stored()[0], Session(
        [Cmd("echo before"), Cmd("exec sleep 0.5", None, message="interrupted")],
        "orphaned", None))


# --- nested sessions ----------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ALL_SHELLS)
@pytest.mark.parametrize("how", ["inherited", "environment cleared"])
def test_nested_session_links_to_the_command_that_started_it(run, shell, how):
    """A shell started from a recorded one links to the command that started it: through
    TRACEPARENT when the environment is passed on, through the process tree when it is not
    (as `su -`, `sudo -i` and `sudo -s` clear it)."""
    r = run(shell)
    r.connected()  # (a queued record would come after the nested shell's first ones)
    inner = " ".join(r.argv)
    if how == "environment cleared":
        keep = " ".join(f"{k}={v}" for k, v in r.env.env.items() if k != "TRACEPARENT")
        inner = f"env -i {keep} {inner}"
    r.sh.child.sendline(inner)
    r.sh.child.expect_exact(PROMPT)
    r.run("echo inner")
    r.sh.child.sendline("exit")
    r.sh.child.expect_exact(PROMPT)
    r.sh.child.sendline("exit")
    r.sh.exit_status()
    outer, nested = r.stored(2)
    if str(r.sh.pid) != outer["pid"]:
        outer, nested = nested, outer
    detail = check(r, outer, Session([Cmd(inner), Cmd("exit")], "exit", 0))
    check(r, nested, Session([Cmd("echo inner"), Cmd("exit")], "exit", 0,
                             parent=(outer["session_id"], detail["commands"][-2]["span_id"])))
