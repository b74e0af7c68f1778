"""How Python shell sessions end, each ending produced for real through a pty and checked in
what the real sink stored (the endings table in docs/python-shells.md).

Ctrl-D, exit(), sys.exit(n), SIGHUP with Python as the terminal's session leader and SIGTERM
are covered in test_python_shells.py; this module covers the rest: os._exit, kill -9, a
terminal that closes under a shell that started Python (which forwards SIGHUP, outlives the
terminal, or ignores SIGHUP), a command cut short by the hangup, an exception that escapes the
console itself, IPython's shell escapes, and the parent of a session started from another one.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shellspan_testing.background import running, wait_for
from shellspan_testing.python_shell_helpers import PROMPT, SHELLSPAN, shell_env, tagged

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

BIN = Path(sys.executable).parent
IPROMPT = re.compile(r"In \[\d+\]: ")
OUTER = "outer$ "
needs_ipython = pytest.mark.skipif(not (BIN / "ipython").exists(),
                                   reason="IPython is not installed in this environment")


@pytest.fixture(scope="module")
def sink(module_sink):
    return module_sink


def spawn(args: list[str], env: dict[str, str]):
    return pexpect.spawn(args[0], args[1:], env=env, encoding="utf-8", timeout=30,
                         dimensions=(24, 200))


def ended_session(sink, tag: str, timeout: float = 30.0) -> dict:
    """The one ended session of shells run with service name ``tag``."""
    def find():
        found = [s for s in tagged(sink, tag) if s["state"] == "ended"]
        return found or None
    found = sink.wait_for(find, timeout)
    assert len(found) == 1, found
    return found[0]


def ended_as(sink, tag: str, reason: str, code: int, n_commands: int) -> dict:
    """The one ended session of ``tag``, checked against how it should have ended."""
    s = ended_session(sink, tag)
    assert (s["exit_reason"], s["exit_code"], s["command_count"]) == (reason, code, n_commands)
    return s


def commands(sink, session_id: str, n: int) -> list[dict]:
    return sink.wait_for(lambda: (d := sink.session(session_id)) and len(d["commands"]) >= n
                         and d["commands"], 30)


def gone(pid: int, timeout: float = 15.0) -> bool:
    """Wait until process `pid` no longer runs (gone, or a zombie nobody has reaped yet)."""
    try:
        return wait_for(lambda: not running(pid), timeout, f"{pid} to end", 0.05)
    except TimeoutError:
        return False


@contextlib.contextmanager
def terminal_closed(child):
    """Close the terminal's master side, as a terminal window or sshd does, without waiting
    for (or signalling) anything: the kernel hangs the terminal up. Afterwards, kill the
    process the test started, should it still run."""
    pid = child.pid
    os.close(child.child_fd)
    child.child_fd = -1
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_os_exit_ends_the_session_with_its_status(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    child.expect_exact(PROMPT)
    child.sendline("import os; os._exit(2)")  # at once: a session of a fraction of a second
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    s = ended_as(sink, env["OTEL_SERVICE_NAME"], "exit", 2, 1)
    cmd = commands(sink, s["session_id"], 1)[0]
    assert (cmd["command"], cmd["exit_code"], cmd["status"]) == ("import os; os._exit(2)", 2,
                                                                 "Error")


def test_os_exit_in_a_forked_child_leaves_the_session_alone(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    child.expect_exact(PROMPT)
    child.sendline("import os; pid = os.fork(); pid or os._exit(7); os.waitpid(pid, 0)[1] >> 8")
    child.expect_exact("7")
    child.expect_exact(PROMPT)
    child.sendline("exit(3)")
    child.expect(pexpect.EOF)
    child.close()
    ended_as(sink, env["OTEL_SERVICE_NAME"], "exit", 3, 2)


def test_kill_9_leaves_a_session_that_exists_and_is_later_abandoned(sink_factory, tmp_path):
    sink = sink_factory("abandoning", extra_args=["--abandon-after", "2"])
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    # Killed at its first prompt: the start span was written to the spool before the prompt,
    # so the next process that drains the spool delivers it.
    quick = spawn([SHELLSPAN, "python", "-q"], env)
    quick.expect_exact(PROMPT)
    quick.kill(signal.SIGKILL)
    quick.expect(pexpect.EOF)
    quick.close()
    assert quick.signalstatus == signal.SIGKILL
    subprocess.run([SHELLSPAN, "spool", "flush"], env=env, capture_output=True, timeout=60,
                   check=True)
    # Killed after a while: what the export thread had sent is there.
    slow_env = dict(env, OTEL_SERVICE_NAME=env["OTEL_SERVICE_NAME"] + "b")
    slow = spawn([SHELLSPAN, "python", "-q"], slow_env)
    slow.expect_exact(PROMPT)
    slow.sendline("a = 1")
    slow.expect_exact(PROMPT)
    sink.wait_for(lambda: (f := tagged(sink, slow_env["OTEL_SERVICE_NAME"]))
                  and f[0]["command_count"] == 1, 30)
    slow.kill(signal.SIGKILL)
    slow.expect(pexpect.EOF)
    slow.close()
    for user, n in ((env["OTEL_SERVICE_NAME"], 0), (slow_env["OTEL_SERVICE_NAME"], 1)):
        s = sink.wait_for(lambda u=user: (f := tagged(sink, u))
                          and f[0]["state"] == "abandoned" and f[0], 30)
        assert (s["exit_reason"], s["exit_code"], s["command_count"]) in (
            (None, None, n), ("", None, n)), s
        assert s["end_time"] in (None, "")


@pytest.mark.parametrize("outer", ["forwards", "outlives", "ignores"])
def test_terminal_closed_under_the_shell_that_started_python(sink, tmp_path, outer):
    """`forwards`: a plain bash, which passes SIGHUP on to its job. `outlives`: a bash with a
    SIGHUP trap that keeps it alive for a while, as a shell that survives its terminal does:
    Python never gets SIGHUP and reads end-of-file from the hung-up terminal, which must not
    be taken for Ctrl-D. `ignores`: SIGHUP ignored (as under nohup): the session still ends
    as a hangup, and the process exits 0 as the bare interpreter does."""
    env = shell_env(tmp_path, sink.otlp_http_endpoint, PS1=OUTER)
    if outer == "ignores":
        child = spawn(["bash", "-c", f"trap '' HUP; exec {SHELLSPAN} python -q"], env)
    else:
        child = spawn(["bash", "--norc", "--noprofile", "-i"], env)
        child.expect_exact(OUTER)
        if outer == "outlives":
            child.sendline("trap 'sleep 2' HUP")
            child.expect_exact(OUTER)
        child.sendline(f"{SHELLSPAN} python -q")
    child.expect_exact(PROMPT)
    child.sendline("a = 1")
    child.expect_exact(PROMPT)
    with terminal_closed(child):
        s = ended_as(sink, env["OTEL_SERVICE_NAME"], "hangup", 0 if outer == "ignores" else 129, 1)
        assert gone(int(s["pid"])), "python still runs after its terminal closed"


def test_a_command_running_when_the_terminal_closes_is_stored_as_cut_short(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    child.expect_exact(PROMPT)
    child.sendline("import time; print('sl' + 'eeping'); time.sleep(60)")
    child.expect_exact("sleeping")  # the output, not the echo of the line: it is running
    with terminal_closed(child):
        s = ended_as(sink, env["OTEL_SERVICE_NAME"], "hangup", 129, 1)
        cmd = commands(sink, s["session_id"], 1)[0]
        assert cmd["exit_code"] is None and cmd["status"] == "Error"  # no invented exit code
        assert cmd["duration_ms"] < 30_000


def test_an_exception_escaping_the_console_is_a_crash(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    child.expect_exact(PROMPT)
    child.sendline("import sys; sys.stdin = None")  # the console's next read fails
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert child.exitstatus == 1
    assert "RuntimeError: input(): lost sys.stdin" in out and "Traceback" in out
    ended_as(sink, env["OTEL_SERVICE_NAME"], "crash", 1, 1)


def test_a_session_started_from_an_instrumented_process_names_its_parent(sink, tmp_path):
    parent_trace, parent_span = os.urandom(16).hex(), os.urandom(8).hex()
    env = shell_env(tmp_path, sink.otlp_http_endpoint,
                    TRACEPARENT=f"00-{parent_trace}-{parent_span}-01")
    child = spawn([SHELLSPAN, "python", "-q"], env)
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    s = ended_session(sink, env["OTEL_SERVICE_NAME"])
    assert s["session_id"] != parent_trace  # its own trace, linked to the parent
    attrs = sink.session(s["session_id"])["session"]["attributes"]
    assert attrs["shell.parent.session.id"] == parent_trace
    assert attrs["shell.parent.span_id"] == parent_span


def ipython(env: dict[str, str], tmp_path: Path, *extra: str) -> list[str]:
    env["IPYTHONDIR"] = str(tmp_path / "ipy")
    return [SHELLSPAN, "ipython", "--no-banner", "--no-confirm-exit", "--colors=NoColor",
            *extra]


@needs_ipython
def test_ipython_shell_escapes_and_cell_magics_keep_their_status(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn(ipython(env, tmp_path, "--simple-prompt"), env)
    child.expect(IPROMPT)
    cells = ["!false", "!true", "x = 1", "!exit 3", "print(_exit_code, type(_exit_code) is int)",
             "%%bash\nexit 4\n\n", "!false", "!false"]
    for cell in cells:
        child.sendline(cell)
        child.expect(IPROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    s = ended_session(sink, env["OTEL_SERVICE_NAME"])
    cmds = commands(sink, s["session_id"], len(cells) + 1)
    assert [(c["command"], c["exit_code"]) for c in cmds] == [
        ("!false", 1), ("!true", 0), ("x = 1", 0), ("!exit 3", 3),
        ("print(_exit_code, type(_exit_code) is int)", 0), ("%%bash\nexit 4", 4),
        ("!false", 1), ("!false", 1), ("exit", 0)]  # a repeated status is still this cell's
    assert [c["status"] for c in cmds][:4] == ["Error", "Unset", "Unset", "Error"]


@needs_ipython
@pytest.mark.parametrize("prompt,outer", [("prompt_toolkit", "outlives"),
                                          ("simple", "outlives"), ("prompt_toolkit", "forwards")])
def test_ipython_in_a_shell_whose_terminal_closes_ends_hangup(sink, tmp_path, prompt, outer):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, PS1=OUTER)
    args = ipython(env, tmp_path, *(["--simple-prompt"] if prompt == "simple" else []))
    child = spawn(["bash", "--norc", "--noprofile", "-i"], env)
    child.expect_exact(OUTER)
    if outer == "outlives":  # the shell outlives its terminal: no SIGHUP is passed on
        child.sendline("trap 'sleep 2' HUP")
        child.expect_exact(OUTER)
    child.sendline(" ".join(args))
    child.expect(IPROMPT)
    child.sendline("k = 1")
    child.expect(IPROMPT)
    with terminal_closed(child):
        s = ended_as(sink, env["OTEL_SERVICE_NAME"], "hangup", 129, 1)
        assert gone(int(s["pid"]))


@needs_ipython
def test_ipython_os_exit(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn(ipython(env, tmp_path, "--simple-prompt"), env)
    child.expect(IPROMPT)
    child.sendline("import os; os._exit(5)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5
    s = ended_as(sink, env["OTEL_SERVICE_NAME"], "exit", 5, 1)
    assert commands(sink, s["session_id"], 1)[0]["exit_code"] == 5
