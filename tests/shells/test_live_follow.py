"""Following a real bash session live: the shell is driven through a pty with the shellspan
hooks and the real agent; its commands reach a real sink and are followed through the sink's
Server-Sent Events and through `shellspan-sink sessions show ID --follow`."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from shellspan_testing.posix_shell_helpers import (
    Shell,
    ShellEnv,
    have,
    rc_files,
    stored_shell_session,
)
from shellspan_testing.sinkproc import SINK_BIN
from shellspan_testing.sse import SseListener

pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")
pytestmark = pytest.mark.skipif(not have("bash"), reason="bash is not installed")


@pytest.fixture
def bash(tmp_path, module_sink):
    env = ShellEnv(tmp_path / "env", module_sink.otlp_http_endpoint)
    sh = Shell(rc_files(env, "bash"), env.env)
    yield env, sh
    sh.close()
    env.stop_agent()


def test_a_followed_bash_session_shows_each_command_as_the_prompt_returns(module_sink, bash):
    env, sh = bash
    session_id = stored_shell_session(sh, module_sink)
    stream = SseListener(module_sink.api_port, f"/api/sessions/{session_id}/events")
    try:
        assert stream.status == 200
        assert stream.next("session").data["user_name"] == env.user
        assert stream.next("command").data["command"] == "echo TP=$TRACEPARENT"
        delays = []
        for line, code in [("echo one", 0), ("false", 1), ("ls /nonexistent-dir", 2),
                           ("echo two", 0)]:
            sh.run(line)
            prompt = time.perf_counter()
            arrived, event = stream.next_timed("command", timeout=30)
            assert (event.data["command"], event.data["exit_code"]) == (line, code)
            delays.append(arrived - prompt)
        sh.child.sendline("exit 3")
        assert sh.exit_status()[0] == 3
        end = stream.next("end", timeout=30)
        assert (end.data["exit_reason"], end.data["exit_code"]) == ("exit", 3)
        assert end.data["command_count"] == 1 + 5
        print(f"\nprompt to event: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    finally:
        stream.close()


def test_cli_follow_prints_a_bash_session_as_it_goes(module_sink, bash):
    _env, sh = bash
    session_id = stored_shell_session(sh, module_sink)
    proc = subprocess.Popen([str(SINK_BIN), "sessions", "show", session_id, "--follow",
                             "--api", module_sink.api_url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Condition()

    def read() -> None:
        for line in proc.stdout:
            with seen:
                lines.append(line.rstrip("\n"))
                seen.notify_all()
    threading.Thread(target=read, daemon=True).start()

    def wait_line(predicate, timeout: float = 30.0) -> str:
        with seen:
            assert seen.wait_for(lambda: any(predicate(x) for x in lines), timeout), lines
            return next(x for x in lines if predicate(x))

    try:
        wait_line(lambda x: "echo TP=" in x)
        sh.run("uname -s")
        assert wait_line(lambda x: x.endswith("uname -s")).split()[0] == "2"
        sh.run("cd /tmp")
        assert wait_line(lambda x: x.endswith("cd /tmp")).split()[0] == "3"
        sh.child.sendline("exit")
        sh.exit_status()
        assert "4 commands" in wait_line(lambda x: x.startswith("-- ended"))
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
