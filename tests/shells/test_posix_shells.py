"""Interactive bash and zsh with the shellspan hooks, driven through a pty against a real sink.

Each test gets its own runtime directory (journals, agent pid, state), spool and user name, and
stops the agent its shells started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from shellspan.otlp import new_span_id, new_trace_id
from shellspan.posix import records as r
from shellspan_testing.background import wait_for
from shellspan_testing.posix_shell_helpers import PROMPT, SHELLS, Shell, ShellEnv, have, rc_files

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")


def _shell_param(name: str):
    return pytest.param(name, marks=pytest.mark.skipif(
        not have(name), reason=f"{name} is not installed (apt-get install -y {name})"))


ALL_SHELLS = [_shell_param(s) for s in SHELLS]


@pytest.fixture(scope="module")
def sink(module_sink):
    """One real sink for the module (sessions are told apart by a unique user name)."""
    return module_sink


@pytest.fixture
def shell_env(tmp_path, sink):
    envs: list[ShellEnv] = []

    def make(endpoint: str | None = None, **extra: str) -> ShellEnv:
        e = ShellEnv(tmp_path / f"env{len(envs)}", endpoint or sink.otlp_http_endpoint, **extra)
        envs.append(e)
        return e

    yield make
    for e in envs:
        e.stop_agent()


def sessions_of(sink, user: str, n: int = 1, state: str | None = "ended",
                timeout: float = 30.0) -> list[dict]:
    def find():
        found = [s for s in sink.sessions(user=user, limit=100) if s["user_name"] == user]
        if len(found) >= n and (state is None or all(s["state"] == state for s in found)):
            return found
        return None
    found = sink.wait_for(find, timeout)
    assert len(found) == n, found
    return found


def detail(sink, session_id: str, n_commands: int, timeout: float = 30.0) -> dict:
    return sink.wait_for(lambda: (d := sink.session(session_id))
                         and len(d["commands"]) >= n_commands and d, timeout)


def pipestatus(sink, session_id: str, span_id: str) -> str:
    result = sink.sql("SELECT SpanAttributes['shell.command.pipestatus'] "
                      "FROM shellspan.otel_traces "
                      f"WHERE TraceId = '{session_id}' AND SpanId = '{span_id}' LIMIT 1")
    return result["rows"][0][0]


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_commands_are_recorded(sink, shell_env, shells, shell, tmp_path):
    env = shell_env()
    work = tmp_path / "work"
    work.mkdir()
    sh = shells(rc_files(env, shell), env.env, cwd=work)
    assert sh.run("echo hello") == "hello\n"
    sh.run("true | false | true")
    sh.run("echo abc | grep -q zzz")
    sh.run("(cd /; exit 3)")
    sh.run("myfunc() { echo in-func; return 5; }")
    assert "in-func" in sh.run("myfunc")
    sh.run("export API_TOKEN=abc123secret")
    sh.run(" echo hidden-secret-value")
    tp = sh.run("echo TP=$TRACEPARENT")
    sh.run(f"cd {env.home}")
    sh.child.sendline("for i in 1 2; do")
    sh.child.expect_exact("> ")
    sh.child.sendline("echo line-$i")
    sh.child.expect_exact("> ")
    sh.child.sendline("done")
    sh.child.expect_exact(PROMPT)
    out = sh.paste("echo pasted-one\necho pasted-two")
    assert "pasted-one" in out and "pasted-two" in out
    sh.child.sendline("sleep 30")
    sh.wait_child("sleep")  # the command runs: Ctrl-C reaches it, not the shell
    sh.child.sendintr()
    sh.child.expect_exact(PROMPT)
    sh.run("true")
    sh.child.sendline("exit 4")
    assert sh.exit_status()[0] == 4

    s = sessions_of(sink, env.user)[0]
    assert s["shell_type"] == shell
    assert (s["exit_reason"], s["exit_code"]) == ("exit", 4)
    d = detail(sink, s["session_id"], 15 if shell == "zsh" else 16)
    attrs = d["session"]["attributes"]
    assert attrs["shell.session.id"] == s["session_id"]
    assert attrs["shell.cwd"] == str(work)
    assert attrs["process.pid"] == str(sh.pid)
    assert attrs["shell.tty"].startswith("/dev/pts/")
    assert attrs["process.parent_pid"] == str(os.getpid())
    cmds = d["commands"]
    texts = [c["command"] for c in cmds]
    expected = ["echo hello", "true | false | true", "echo abc | grep -q zzz", "(cd /; exit 3)",
                "myfunc() { echo in-func; return 5; }", "myfunc", "export API_TOKEN=[REDACTED]",
                " echo hidden-secret-value", "echo TP=$TRACEPARENT", f"cd {env.home}"]
    assert texts[:10] == expected
    assert texts[10] == "for i in 1 2; do\necho line-$i\ndone"
    # A paste of two lines: zsh runs it as one command, bash as two (one history entry each).
    pasted = ["echo pasted-one\necho pasted-two"] if shell == "zsh" else [
        "echo pasted-one", "echo pasted-two"]
    n = 11 + len(pasted)
    assert texts[11:n] == pasted
    assert texts[n:] == ["sleep 30", "true", "exit 4"]
    assert [c["seq"] for c in cmds] == list(range(1, n + 4))
    assert [c["exit_code"] for c in cmds] == [0, 0, 1, 3, 0, 5, 0, 0, 0, 0, 0] + [0] * len(
        pasted) + [130, 0, 4]
    assert [c["status"] for c in cmds][:4] == ["Unset", "Unset", "Error", "Error"]
    assert [c["redacted"] for c in cmds][5:9] == [False, True, False, False]
    assert cmds[0]["command_name"] == "echo" and cmds[n]["command_name"] == "sleep"
    assert cmds[0]["cwd"] == str(work) and cmds[10]["cwd"] == str(env.home)
    assert "abc123secret" not in str(d)
    assert 0 < cmds[n]["duration_ms"] < 20000
    assert pipestatus(sink, s["session_id"], cmds[1]["span_id"]) == "[0,1,0]"
    assert pipestatus(sink, s["session_id"], cmds[2]["span_id"]) == "[0,1]"
    # TRACEPARENT seen by the command is the command's own span in the session's trace.
    m = re.search(r"TP=00-([0-9a-f]{32})-([0-9a-f]{16})-01", tp)
    assert m, tp
    assert m.group(1) == s["session_id"] and m.group(2) == cmds[8]["span_id"]


SCRIPT = ["echo start", "true | false | true; echo ${PIPESTATUS[*]:-$pipestatus}",
          "(exit 7); echo rc=$?", "f() { return 3; }; f; echo rc=$?", "ls /nonexistent-dir",
          "echo $((6 * 7))", " echo spaced"]


def transcript(sh: Shell) -> list[str]:
    return [sh.run(line) for line in SCRIPT]


@pytest.mark.parametrize("shell", ALL_SHELLS)
@pytest.mark.parametrize("down", ["agent", "collector"])
def test_behaviour_unchanged_when_agent_or_collector_down(sink_factory, shell_env, shells,
                                                          shell, down):
    plain_env = shell_env()
    plain = shells(rc_files(plain_env, shell, instrumented=False), plain_env.env)
    expected = transcript(plain)
    plain.child.sendline("exit 6")
    assert plain.exit_status()[0] == 6

    if down == "agent":
        env = shell_env(SHELLSPAN_AGENT_AUTOSTART="0")
        sh = shells(rc_files(env, shell), env.env)
        assert transcript(sh) == expected
        sh.child.sendline("exit 6")
        assert sh.exit_status()[0] == 6
        assert env.agent_pid() is None
        return
    collector = sink_factory("late")
    collector.stop()  # the collector is down while the session runs
    env = shell_env(collector.otlp_http_endpoint)
    sh = shells(rc_files(env, shell), env.env)
    assert transcript(sh) == expected
    sh.child.sendline("exit 6")
    assert sh.exit_status()[0] == 6
    env.wait_agent()
    spool = env.root / "spool"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not list(spool.glob("*.otlp")):
        time.sleep(0.1)
    assert list(spool.glob("*.otlp")), "nothing was spooled"
    collector.start()  # back: the agent resends the spool
    s = sessions_of(collector, env.user, timeout=60)[0]
    assert (s["exit_reason"], s["exit_code"]) == ("exit", 6)
    assert s["command_count"] == len(SCRIPT) + 1


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_status_and_doctor(sink, shell_env, shells, shell):
    """Typed as the first command of the first shell: the agent that shell just started knows
    its session."""
    env = shell_env()
    sh = shells(rc_files(env, shell), env.env)
    out = sh.run("shellspan status")
    assert f"active in this {shell}" in out, out
    assert "agent:       running" in out and env.env["OTEL_EXPORTER_OTLP_ENDPOINT"] in out
    assert "spooled:     0 requests" in out
    doc = sh.run("shellspan doctor; echo rc=$?")
    assert "problems:    none found" in doc and "rc=0" in doc, doc
    sh.child.sendline("exit")
    sh.exit_status()
    env.stop_agent()
    out = pexpect.run("shellspan doctor", env=env.env, encoding="utf-8", timeout=30)
    assert "hook:        not active" in out and "agent:       not running" in out


def test_bash_coexists_with_prompt_command_and_debug_trap(sink, shell_env, shells):
    if not have("bash"):
        pytest.skip("bash is not installed")
    env = shell_env()
    # A string PROMPT_COMMAND and a DEBUG trap before the hooks, an EXIT trap, an array element
    # after them, and a prompt that shows $? and PIPESTATUS.
    before = ("__dbg=0\ntrap '__dbg=$((__dbg+1))' DEBUG\n"
              "PROMPT_COMMAND='__u=\"$? ${PIPESTATUS[*]}\"'\n"
              "trap 'echo user-exit-trap' EXIT\n")
    after = ("__p2() { __v=\"$? ${PIPESTATUS[*]}\"; }\nPROMPT_COMMAND+=(__p2)\n"
             "PS1='<$? ${PIPESTATUS[*]}>'\"$PS1\"\n")

    def run(line: str) -> tuple[str, str]:
        out = sh.run(line)
        body, _, prompt = out.rpartition("<")
        return body, prompt

    sh = shells(rc_files(env, "bash", before=before, after=after), env.env)
    assert run("true | false | true")[1] == "0 0 1 0>"
    assert run('echo "u=$__u v=$__v"') == ("u=0 0 1 0 v=0 0 1 0\n", "0 0>")
    assert run("(exit 9)")[1] == "9 9>"
    assert run('echo "u=$__u v=$__v"')[0] == "u=9 9 v=9 9\n"
    run("__dbg=0")
    assert int(run("echo $__dbg")[0]) >= 1  # the user's DEBUG trap still fires
    sh.child.sendline("exit 2")
    sh.child.expect_exact("user-exit-trap")
    assert sh.exit_status()[0] == 2
    s = sessions_of(sink, env.user)[0]
    assert (s["exit_reason"], s["exit_code"]) == ("exit", 2)
    cmds = detail(sink, s["session_id"], 7)["commands"]
    assert [c["exit_code"] for c in cmds][:4] == [0, 0, 9, 0]


def test_zsh_coexists_with_other_hooks(sink, shell_env, shells):
    if not have("zsh"):
        pytest.skip("zsh is not installed")
    env = shell_env()
    before = ("autoload -Uz add-zsh-hook\n__u() { __uv=\"$? ${pipestatus[*]}\"; }\n"
              "add-zsh-hook precmd __u\n__pre() { __seen=$1; }\nadd-zsh-hook preexec __pre\n")
    after = "__w() { __wv=\"$? ${pipestatus[*]}\"; }\nadd-zsh-hook precmd __w\n"
    sh = shells(rc_files(env, "zsh", before=before, after=after), env.env)
    sh.run("true | false | true")
    assert sh.run('echo "u=$__uv w=$__wv"').startswith("u=0 0 1 0 w=0 0 1 0")
    sh.run("(exit 9)")
    assert sh.run('echo "u=$__uv w=$__wv seen=$__seen"').startswith(
        "u=9 9 w=9 9 seen=echo")
    sh.child.sendline("exit")
    sh.exit_status()
    s = sessions_of(sink, env.user)[0]
    cmds = detail(sink, s["session_id"], 5)["commands"]
    assert [c["exit_code"] for c in cmds][:3] == [0, 0, 9]


def _bash_preexec() -> str | None:
    for path in (os.environ.get("SHELLSPAN_TEST_BASH_PREEXEC", ""),
                 "/usr/share/bash-preexec/bash-preexec.sh", "/usr/share/bash-preexec.sh",
                 os.path.expanduser("~/.bash-preexec.sh")):
        if path and os.path.isfile(path):
            return path
    return None


@pytest.mark.parametrize("order", ["preexec-first", "preexec-last"])
def test_bash_coexists_with_bash_preexec(sink, shell_env, shells, order):
    """bash-preexec sees what it sees without the hooks in the same place: sourced before them
    it misses a shell's first command, as it does with any PROMPT_COMMAND entry added after it
    (its documentation asks to source it last); the hooks record every command."""
    path = _bash_preexec()
    if not have("bash") or path is None:
        pytest.skip("bash-preexec not found (set SHELLSPAN_TEST_BASH_PREEXEC to its path)")
    load = (f"source {path}\n__seen=()\npreexec() {{ __seen+=(\"$1\"); }}\n"
            "precmd() { __pst=\"$? ${BP_PIPESTATUS[*]}\"; }\n")
    lines = ["true | false | true", 'echo "pst=$__pst"', "(exit 5)", " echo secret-here",
             'echo "${__seen[*]}"']

    def typed(instrumented: bool) -> tuple[ShellEnv, Shell, list[str]]:
        env = shell_env()
        if order == "preexec-last":
            kw = {"after": load}
        else:  # without the hooks, another entry after bash-preexec's stands in for theirs
            kw = {"before": load, "after": "" if instrumented else 'PROMPT_COMMAND+=(":")\n'}
        sh = shells(rc_files(env, "bash", instrumented=instrumented, **kw), env.env)
        return env, sh, [sh.run(line) for line in lines]

    _, _, reference = typed(instrumented=False)
    env, sh, outputs = typed(instrumented=True)
    assert outputs == reference  # what bash-preexec saw ($__pst, ${__seen[*]}) included
    assert outputs[1] == "pst=0 0 1 0\n"
    sh.child.sendline("exit")
    sh.exit_status()
    s = sessions_of(sink, env.user)[0]
    cmds = detail(sink, s["session_id"], 6)["commands"]
    assert [c["command"] for c in cmds][:5] == lines
    assert [c["exit_code"] for c in cmds][:4] == [0, 0, 5, 0]


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_long_commands_arrive_whole(sink, shell_env, shells, shell):
    env = shell_env()
    sh = shells(rc_files(env, shell), env.env)
    words = " ".join(f"w{i:04d}-é" for i in range(400))  # ~3,600 characters, multibyte
    out = sh.run(f"echo {words} | wc -w")
    assert out.strip() == "400"
    sh.child.sendline("exit")
    sh.exit_status()
    s = sessions_of(sink, env.user)[0]
    cmds = detail(sink, s["session_id"], 2)["commands"]
    assert cmds[0]["command"] == f"echo {words} | wc -w"
    assert [c["seq"] for c in cmds] == [1, 2]


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_agent_killed_is_replaced_and_adopts_live_sessions(sink, shell_env, shells, shell):
    """An agent killed with -9: the next command finds it gone and starts another, which takes
    over the session from the state file."""
    env = shell_env()
    sh = shells(rc_files(env, shell), env.env)
    sh.run("echo before")
    first = env.wait_agent()
    sh.run("echo still-before")
    # (what it read but had not sent yet dies with it: wait until the commands are stored)
    live = sessions_of(sink, env.user, state="active")[0]
    detail(sink, live["session_id"], 2)
    os.kill(first, signal.SIGKILL)
    while os.path.exists(f"/proc/{first}"):
        time.sleep(0.05)
    assert sh.run("echo agent-down") == "agent-down\n"  # the shell does not notice
    second = env.wait_agent()
    assert second != first
    sh.run("echo after")
    sh.child.sendline("exit 3")
    assert sh.exit_status()[0] == 3
    s = sessions_of(sink, env.user)[0]
    assert (s["exit_reason"], s["exit_code"]) == ("exit", 3)
    texts = [c["command"] for c in detail(sink, s["session_id"], 4)["commands"]]
    assert texts[:2] == ["echo before", "echo still-before"]
    assert texts[-2:] == ["echo after", "exit 3"]


@pytest.mark.parametrize("shell", ALL_SHELLS)
@pytest.mark.parametrize("how", ["stop", "upgrade"])
def test_no_command_lost_across_an_agent_stop(sink, shell_env, shells, shell, how):
    """`shellspan agent stop` while a shell types 200 commands: the shell queues while no
    agent runs and starts the next one (or the next one is started by hand, as after an
    upgrade); every command arrives, in order."""
    env = shell_env(**({"SHELLSPAN_AGENT_AUTOSTART": "0"} if how == "upgrade" else {}))
    sh = shells(rc_files(env, shell), env.env)
    if how == "upgrade":
        pexpect.run("shellspan agent --daemon", env=env.env, timeout=30)
    first = env.wait_agent()
    for i in range(200):
        if i == 50:
            out = pexpect.run("shellspan agent stop", env=env.env, timeout=30, encoding="utf-8")
            assert f"stopped (pid {first})" in out, out
        if i == 120 and how == "upgrade":
            pexpect.run("shellspan agent --daemon", env=env.env, timeout=30)
        sh.run(f"echo c{i}")
    assert env.wait_agent() != first
    sh.child.sendline("exit")
    sh.exit_status()
    s = sessions_of(sink, env.user)[0]
    texts = [c["command"] for c in detail(sink, s["session_id"], 201)["commands"]]
    assert texts == [f"echo c{i}" for i in range(200)] + ["exit"]
    assert s["exit_reason"] == "exit"


def test_an_upgraded_agent_reads_what_older_shells_write_and_left(sink, shell_env):
    """Shells started before an upgrade hold the previous version's FIFO open and go on
    writing their records into it: the new agent reads it with the journals (so a bash shell
    never blocks on a full pipe), and removes it once no shell holds it open. What an older
    shell that exited with no agent up left in its q.PID file is read and removed too."""
    env = shell_env(SHELLSPAN_AGENT_AUTOSTART="0")
    fifo = env.runtime / "events"
    os.mkfifo(fifo, 0o600)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # as the old hooks held it
    shell = subprocess.Popen(["sleep", "60"])  # the old shell's process
    sid = new_trace_id().hex()
    now_us = time.time_ns() // 1000
    gone = subprocess.Popen(["true"])  # an older shell that exited, its queue left behind
    gone.wait()
    left_sid = new_trace_id().hex()
    queue = env.runtime / f"q.{gone.pid}"
    queue.write_bytes(b"".join(r.encode(rec) for rec in (
        r.Begin(gone.pid, left_sid, 1, new_span_id(), now_us, "/", "", "", "echo left-behind"),
        r.End(gone.pid, left_sid, 1, now_us + 100_000, 0, (0,)),
        r.Exit(gone.pid, left_sid, now_us + 200_000, 0, "exit"))))
    queue.chmod(0o600)
    try:
        for rec in (r.Begin(shell.pid, sid, 1, new_span_id(), now_us, "/", "", "",
                            "echo old-shell"),
                    r.End(shell.pid, sid, 1, now_us + 100_000, 0, (0,))):
            os.write(writer, r.encode(rec))
        pexpect.run("shellspan agent --daemon", env=env.env, timeout=30)
        env.wait_agent()
        os.write(writer, r.encode(r.Exit(shell.pid, sid, now_us + 200_000, 0, "exit")))
        stored = sink.wait_for(lambda: (d := sink.session(sid)) and d["session"]["state"]
                               == "ended" and d, 30)
        assert [c["command"] for c in stored["commands"]] == ["echo old-shell"]
        assert fifo.exists()  # a shell still holds it
        left = sink.wait_for(lambda: (d := sink.session(left_sid)) and d["commands"] and d, 30)
        assert [c["command"] for c in left["commands"]] == ["echo left-behind"]
        assert not queue.exists()
    finally:
        os.close(writer)
        shell.kill()
        shell.wait()
    wait_for(lambda: not fifo.exists(), 10, "the FIFO to be removed once no shell holds it", 0.05)


def test_bash_debug_trap_fallback(sink, shell_env, shells):
    """The mode used by bash < 4.4 (no PS0), forced on this bash."""
    if not have("bash"):
        pytest.skip("bash is not installed")
    env = shell_env(SHELLSPAN_BASH_DEBUG_TRAP="1")
    before = "__dbg=0\ntrap '__dbg=$((__dbg+1))' DEBUG\n"
    sh = shells(rc_files(env, "bash", before=before), env.env)
    sh.run("sleep 0.3")
    sh.run("")
    sh.run("true | false")
    sh.run("__dbg=0")
    assert int(sh.run("echo $__dbg").strip()) >= 1  # the user's DEBUG trap still runs
    sh.child.sendline("exit 1")
    assert sh.exit_status()[0] == 1
    s = sessions_of(sink, env.user)[0]
    assert (s["exit_reason"], s["exit_code"]) == ("exit", 1)
    cmds = detail(sink, s["session_id"], 5)["commands"]
    assert [c["command"] for c in cmds] == ["sleep 0.3", "true | false", "__dbg=0", "echo $__dbg",
                                            "exit 1"]
    assert [c["exit_code"] for c in cmds] == [0, 1, 0, 0, 1]
    assert 250 <= cmds[0]["duration_ms"] < 5000


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_eval_form_of_the_rc_line(sink, shell_env, shells, shell):
    env = shell_env()
    sh = shells(rc_files(env, shell, instrumented=False,
                         after=f'eval "$(shellspan init {shell})"\n'), env.env)
    assert sh.run("echo via-eval") == "via-eval\n"
    sh.child.sendline("exit")
    assert sh.exit_status()[0] == 0
    s = sessions_of(sink, env.user)[0]
    assert s["shell_type"] == shell and s["exit_reason"] == "exit"
    assert [c["command"] for c in detail(sink, s["session_id"], 2)["commands"]] == [
        "echo via-eval", "exit"]


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_first_shell_creates_the_runtime_dir(sink, shell_env, shells, shell, tmp_path):
    """No runtime directory yet (first shell of the user): the agent creates it 0700; an
    existing EXIT trap is still chained."""
    fresh = tmp_path / "fresh" / "rt"
    env = shell_env(SHELLSPAN_RUNTIME_DIR=str(fresh))
    env.runtime = fresh
    before = "trap 'echo user-exit-trap' EXIT\n" if shell == "bash" else ""
    sh = shells(rc_files(env, shell, before=before), env.env)
    sh.run("echo one")
    env.wait_agent()
    assert (fresh.stat().st_mode & 0o777) == 0o700
    sh.run("echo two")
    sh.child.sendline("exit")
    if shell == "bash":
        sh.child.expect_exact("user-exit-trap")
    sh.exit_status()
    s = sessions_of(sink, env.user)[0]
    assert [c["command"] for c in detail(sink, s["session_id"], 3)["commands"]] == [
        "echo one", "echo two", "exit"]
