"""Python shells driven through a pty against a real sink: the stored sessions are checked."""

from __future__ import annotations

import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from shellspan_testing.python_shell_helpers import (  # noqa: E402
    PROMPT,
    SHELLSPAN,
    shell_env,
    tagged,
)

BIN = Path(sys.executable).parent

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

def spawn(args: list[str], env: dict[str, str], cwd: Path | None = None):
    return pexpect.spawn(args[0], args[1:], env=env, encoding="utf-8", timeout=20,
                         cwd=str(cwd) if cwd else None, dimensions=(24, 200))


def run_commands(child, commands: list[str], prompt: str = PROMPT) -> None:
    child.expect_exact(prompt)
    for line in commands:
        child.sendline(line)
        child.expect_exact(prompt)


def wait_exit(child, timeout: float = 10.0) -> float:
    """Wait for the child to exit; returns the seconds it took."""
    t0 = time.monotonic()
    child.expect(pexpect.EOF, timeout=timeout)
    child.close()
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def sink(module_sink):
    """One real sink for the module (sessions are told apart by a unique service name)."""
    return module_sink


def one_session(sink, env: dict[str, str], *, state: str | None = "ended",
                timeout: float = 20.0) -> dict:
    def find():
        found = tagged(sink, env)
        if found and (state is None or found[0]["state"] == state):
            return found
        return None
    found = sink.wait_for(find, timeout)
    assert len(found) == 1, found
    return found[0]


def detail(sink, session_id: str, n_commands: int, timeout: float = 20.0) -> dict:
    return sink.wait_for(lambda: (d := sink.session(session_id))
                         and len(d["commands"]) >= n_commands and d, timeout)


COMMANDS = [
    "x = 20",
    "print(x + 22)",
    "1/0",
    "def broken(:",
    "for i in range(2):\n    print('line', i)\n",
    "password = 'hunter2'",
    "import os; os.chdir(os.environ['HOME'])",
]


def test_plain_repl_records_session_commands_and_exit(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env, cwd=tmp_path)
    t0 = time.time()
    run_commands(child, COMMANDS[:4])
    child.sendline("for i in range(2):")
    child.expect_exact("... ")
    child.sendline("    print('line', i)")
    child.expect_exact("... ")
    child.sendline("")
    child.expect_exact(PROMPT)
    for line in COMMANDS[5:]:
        child.sendline(line)
        child.expect_exact(PROMPT)
    time.sleep(0.3)
    child.sendline("import sys; sys.exit(3)")
    wait_exit(child)
    elapsed = time.time() - t0
    assert child.exitstatus == 3

    s = one_session(sink, env)
    assert s["shell_type"] == "python"
    assert s["exit_reason"] == "exit" and s["exit_code"] == 3
    assert s["command_count"] == 8 and s["failed_count"] == 3
    assert 0.3 <= s["duration_s"] <= elapsed + 1.0
    d = detail(sink, s["session_id"], 8)
    attrs = d["session"]["attributes"]
    assert attrs["shell.session.id"] == s["session_id"]
    assert attrs["shell.cwd"] == str(tmp_path)
    assert str(attrs["process.pid"]) == s["pid"] and attrs["shell.tty"].startswith("/dev/")
    cmds = d["commands"]
    assert [c["seq"] for c in cmds] == list(range(1, 9))
    assert [c["command"] for c in cmds] == [
        "x = 20", "print(x + 22)", "1/0", "def broken(:",
        "for i in range(2):\n    print('line', i)", "password = [REDACTED]",
        "import os; os.chdir(os.environ['HOME'])", "import sys; sys.exit(3)"]
    assert [c["exit_code"] for c in cmds] == [0, 0, 1, 1, 0, 0, 0, 3]
    assert [c["status"] for c in cmds] == ["Unset", "Unset", "Error", "Error", "Unset", "Unset",
                                           "Unset", "Error"]
    assert [c["redacted"] for c in cmds] == [False] * 5 + [True, False, False]
    assert "hunter2" not in str(d)
    assert cmds[0]["cwd"] == str(tmp_path) and cmds[7]["cwd"] == env["HOME"]


@pytest.mark.parametrize("how", ["eof", "exit", "sighup", "sigterm"])
def test_repl_exit_reasons(sink, tmp_path, how):
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    run_commands(child, ["a = 1"])
    if how == "eof":
        child.sendeof()
    elif how == "exit":
        child.sendline("exit()")
    elif how == "sighup":
        child.close(force=False)  # the terminal goes away: the kernel sends SIGHUP
    else:
        child.kill(signal.SIGTERM)
    if how != "sighup":
        wait_exit(child)
    expected = {"eof": ("eof", 0), "exit": ("exit", 0), "sighup": ("hangup", 129),
                "sigterm": ("signal", 143)}[how]
    s = one_session(sink, env)
    assert (s["exit_reason"], s["exit_code"]) == expected
    assert s["command_count"] == (2 if how == "exit" else 1)
    if how == "sigterm":
        assert child.signalstatus == signal.SIGTERM


def test_repl_signal_handled_while_the_prompt_waits(sink, tmp_path):
    """A SIGTERM whose C-level handler runs while the main thread is already waiting at the
    prompt (here: caught by another thread; likewise a signal landing just before readline's
    select) leaves Python's handler pending until the next keystroke: the session must still
    end and the process die of the signal."""
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([SHELLSPAN, "python", "-q"], env)
    run_commands(child, ["import signal, threading, time",
                         "threading.Thread(target=lambda: (time.sleep(0.5), signal.pthread_kill("
                         "threading.get_ident(), signal.SIGTERM))).start()"])
    wait_exit(child)
    assert child.signalstatus == signal.SIGTERM
    s = one_session(sink, env)
    assert (s["exit_reason"], s["exit_code"], s["command_count"]) == ("signal", 143, 2)


def test_traceparent_for_subprocesses(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, BAGGAGE="team=ops")
    child = spawn([SHELLSPAN, "python", "-q"], env)
    run_commands(child, [])
    child.sendline("import subprocess; r = subprocess.run(['sh', '-c', "
                   "'echo TP=$TRACEPARENT; echo TS=$TRACESTATE; echo BG=$BAGGAGE'])")
    child.expect(r"TP=(\S+)\s+TS=(\S*)\s+BG=(\S+)")
    tp, ts, bg = (g.strip() for g in child.match.groups())
    child.expect_exact(PROMPT)
    child.sendeof()
    wait_exit(child)
    s = one_session(sink, env)
    cmd = detail(sink, s["session_id"], 1)["commands"][0]
    assert tp == f"00-{s['session_id']}-{cmd['span_id']}-01"
    assert ts.startswith("shellspan=")
    assert f"shell.session.id={s['session_id']}" in bg and "team=ops" in bg


def test_heartbeats_keep_a_live_session_active(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, SHELLSPAN_HEARTBEAT_INTERVAL="0.3")
    child = spawn([SHELLSPAN, "python", "-q"], env)
    run_commands(child, ["b = 2"])
    def live():
        found = tagged(sink, env)
        if found and found[0]["state"] == "active":
            f = found[0]
            if f["last_seen"] > f["start_time"] and f["command_count"] >= 1:
                return f
        return None
    time.sleep(1.0)
    s = sink.wait_for(live, 15)
    assert s["end_time"] in (None, "") or s["state"] == "active"
    child.sendeof()
    wait_exit(child)
    assert one_session(sink, env)["state"] == "ended"


ADMIN_SHELL = textwrap.dedent('''
    import cmd
    import sys

    from shellspan.admin import InstrumentedShell


    class AcmeShell(InstrumentedShell, cmd.Cmd):
        prompt = "acme> "
        shellspan_shell_type = "acme-admin"
        shellspan_catch_exceptions = True

        def shellspan_component_name(self):
            return "acme-billing"

        def shellspan_component_version(self):
            return "2.3.1"

        def shellspan_adapters(self):
            return ["postgres", "stripe"]

        def shellspan_metadata(self):
            return {"acme.tenant": "tenant-7"}

        def do_greet(self, arg):
            print("hello", arg)

        def do_fail(self, arg):
            self.shellspan_fail(4, "refused")

        def do_boom(self, arg):
            raise RuntimeError("boom")

        def do_login(self, arg):
            print("ok")

        def do_quit(self, arg):
            return True

        def do_EOF(self, arg):
            print()
            return True


    AcmeShell().cmdloop()
    sys.exit(0)
''')


@pytest.mark.parametrize("ending", ["quit", "eof"])
def test_custom_admin_shell(sink, tmp_path, ending):
    script = tmp_path / "acme_shell.py"
    script.write_text(ADMIN_SHELL)
    env = shell_env(tmp_path, sink.otlp_http_endpoint)
    child = spawn([sys.executable, str(script)], env)
    run_commands(child, ["greet world", "fail", "boom", "login --password s3cret"], "acme> ")
    if ending == "quit":
        child.sendline("quit")
    else:
        child.sendeof()
    wait_exit(child)
    s = one_session(sink, env)
    assert s["shell_type"] == "acme-admin"
    assert s["component_name"] == "acme-billing" and s["component_version"] == "2.3.1"
    assert s["exit_reason"] == ("exit" if ending == "quit" else "eof")
    n = 5 if ending == "quit" else 4
    d = detail(sink, s["session_id"], n)
    attrs = d["session"]["attributes"]
    assert attrs["acme.tenant"] == "tenant-7"
    assert "postgres" in str(attrs["shell.component.adapters"])
    cmds = d["commands"]
    assert [c["command"] for c in cmds][:4] == ["greet world", "fail", "boom",
                                                 "login --password [REDACTED]"]
    assert [c["exit_code"] for c in cmds][:4] == [0, 4, 1, 0]
    assert [c["command_name"] for c in cmds][:4] == ["greet", "fail", "boom", "login"]
    assert len(cmds) == n


needs_ipython = pytest.mark.skipif(shutil.which("ipython", path=str(BIN)) is None,
                                   reason="IPython is not installed in this environment")
IPROMPT = r"In \[\d+\]: "


@needs_ipython
def test_shellspan_ipython(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, IPYTHONDIR=str(tmp_path / "ipy"))
    child = spawn([SHELLSPAN, "ipython", "--no-banner", "--no-confirm-exit", "--simple-prompt",
                   "--colors=NoColor"], env)
    child.expect(IPROMPT)
    for line in ["n = 6 * 7", "n / 0", "api_key = 'sk-abcdefghijklmnopqrstuvwxyz'", "%pwd"]:
        child.sendline(line)
        child.expect(IPROMPT)
    child.sendline("exit")
    wait_exit(child, 20)
    s = one_session(sink, env)
    assert s["shell_type"] == "ipython" and s["exit_reason"] == "exit"
    cmds = detail(sink, s["session_id"], 5)["commands"]
    assert [c["command"] for c in cmds] == ["n = 6 * 7", "n / 0", "api_key = [REDACTED]",
                                            "%pwd", "exit"]
    assert [c["exit_code"] for c in cmds] == [0, 1, 0, 0, 0]
    assert cmds[1]["status"] == "Error" and cmds[2]["redacted"] is True


@needs_ipython
@pytest.mark.parametrize("how", ["quit", "eof", "sighup", "sigterm"])
def test_shellspan_ipython_exit_reasons(sink, tmp_path, how):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, IPYTHONDIR=str(tmp_path / "ipy"))
    child = spawn([SHELLSPAN, "ipython", "--no-banner", "--no-confirm-exit", "--simple-prompt",
                   "--colors=NoColor"], env)
    child.expect(IPROMPT)
    child.sendline("k = 1")
    child.expect(IPROMPT)
    if how == "quit":
        child.sendline("quit()")
    elif how == "eof":
        child.sendeof()
    elif how == "sighup":
        child.close(force=False)  # the terminal goes away: the kernel sends SIGHUP
    else:
        child.kill(signal.SIGTERM)
    if how != "sighup":
        wait_exit(child, 20)
    expected = {"quit": ("exit", 0, 2), "eof": ("eof", 0, 1), "sighup": ("hangup", 129, 1),
                "sigterm": ("signal", 143, 1)}[how]
    s = one_session(sink, env)
    assert s["shell_type"] == "ipython"
    assert (s["exit_reason"], s["exit_code"], s["command_count"]) == expected
    if how == "eof":
        assert child.exitstatus == 0
    if how == "sigterm":
        assert child.signalstatus == signal.SIGTERM
    cmds = detail(sink, s["session_id"], expected[2])["commands"]
    assert [c["command"] for c in cmds] == ["k = 1", "quit()"][:expected[2]]


@needs_ipython
def test_ipython_load_ext_then_eof(sink, tmp_path):
    env = shell_env(tmp_path, sink.otlp_http_endpoint, IPYTHONDIR=str(tmp_path / "ipy"))
    child = spawn([str(BIN / "ipython"), "--no-banner", "--no-confirm-exit", "--simple-prompt",
                   "--colors=NoColor"], env)
    child.expect(IPROMPT)
    child.sendline("%load_ext shellspan.ipython_ext")
    child.expect(IPROMPT)
    child.sendline("import math; math.sqrt(16)")
    child.expect(IPROMPT)
    child.sendeof()
    wait_exit(child, 20)
    s = one_session(sink, env)
    assert s["shell_type"] == "ipython" and s["exit_reason"] == "eof"
    cmds = detail(sink, s["session_id"], 1)["commands"]
    assert [c["command"] for c in cmds] == ["import math; math.sqrt(16)"]


@pytest.mark.parametrize("way", ["pythonstartup", "interactivehook"])
def test_auto_instrumentation_of_the_bare_interpreter(sink, tmp_path, way):
    import importlib.util

    startup = importlib.util.find_spec("shellspan.startup").origin
    if way == "pythonstartup":
        env = shell_env(tmp_path, sink.otlp_http_endpoint, PYTHONSTARTUP=startup)
        args = [sys.executable, "-q"]
    else:  # what the .pth file does, on an interpreter entering its prompt after -c
        env = shell_env(tmp_path, sink.otlp_http_endpoint)
        args = [sys.executable, "-q", "-i", "-c", "import shellspan.auto; shellspan.auto.install()"]
    child = spawn(args, env)
    run_commands(child, ["y = 'auto'"])
    child.sendline("exit(5)")
    wait_exit(child)
    assert child.exitstatus == 5
    s = one_session(sink, env)
    assert (s["shell_type"], s["exit_reason"], s["exit_code"]) == ("python", "exit", 5)
    cmds = detail(sink, s["session_id"], 2)["commands"]
    assert [c["command"] for c in cmds] == ["y = 'auto'", "exit(5)"]
