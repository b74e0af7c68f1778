"""Sessions started with `sudo -i`, `sudo -s` and `su -` link to the command that started them,
although these clear the environment (TRACEPARENT is gone): the new shell's agent finds the
command up the process tree. A real user (useradd) with a sudo rule, shells through a pty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shellspan.posix.hooks import init_script
from shellspan_testing.posix_shell_helpers import PROMPT, SHELLSPAN, ShellEnv, have, rc_files
from shellspan_testing.unix_users import UnixUser, default_view, missing_tools, public_dir

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")


@pytest.fixture(scope="module")
def sink(module_sink):
    return module_sink


@pytest.fixture
def user(request):
    why = missing_tools() or default_view().problem or ("sudo is not installed (scripts/install-test-deps.sh)"
                                 if not have("sudo") else None) or (
        None if have("bash") else "bash is not installed")
    if why:
        pytest.skip(why)
    base = public_dir("shellspan-users-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    u = UnixUser(base)
    request.addfinalizer(u.remove)
    rule = Path(f"/etc/sudoers.d/shellspan-test-{u.name}")
    rule.write_text(f"{u.name} ALL=(ALL) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    request.addfinalizer(rule.unlink)
    yield u
    u.kill_processes()  # its shells and agents, before their directories go
    shutil.rmtree(f"/tmp/shellspan-{u.uid}", ignore_errors=True)


def root_rc(tmp: Path, endpoint: str) -> tuple[Path, ShellEnv]:
    """An rc file for a root shell that sudo or su starts with a cleared environment: it sets
    what the test needs (its own runtime directory, the sink) before the hooks."""
    env = ShellEnv(tmp, endpoint)
    rc = tmp / "root.rc"
    exports = "".join(f"export {k}='{v}'\n" for k, v in env.env.items()
                      if k.startswith(("SHELLSPAN_", "OTEL_", "XDG_STATE")))
    rc.write_text(f"PS1='{PROMPT}'\nHISTFILE=/dev/null\n{exports}"
                  f"source {tmp / 'hook.bash'}\n")
    (tmp / "hook.bash").write_text(init_script("bash", SHELLSPAN))
    return rc, env


def child_of(sink, parent_sid: str) -> dict:
    def find():
        rows = sink.sql("SELECT DISTINCT TraceId FROM shellspan.otel_traces WHERE SpanAttributes"
                        f"['shell.parent.session.id'] = '{parent_sid}'")["rows"]
        if not rows:
            return None
        d = sink.session(rows[0][0])
        return d if d and d["session"]["state"] == "ended" else None
    return sink.wait_for(find, 60)


def ended(sink, user: str) -> dict:
    def find():
        found = [s for s in sink.sessions(user=user, limit=10) if s["user_name"] == user
                 and s["state"] == "ended"]
        return sink.session(found[0]["session_id"]) if found else None
    return sink.wait_for(find, 60)


@pytest.mark.parametrize("how", ["sudo -i", "sudo -s"])
def test_sudo_session_links_to_the_users_command(sink, user, tmp_path, how):
    pub = public_dir("shellspan-root-rc-")
    try:
        rc, root_env = root_rc(pub, sink.otlp_http_endpoint)
        hook = user.write(".shellspan.bash", init_script("bash", str(user.bin)))
        user.write(".bashrc", f"PS1='{PROMPT}'\nHISTFILE=/dev/null\nsource {hook}\n")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(user.home), "USER": user.name,
               "LOGNAME": user.name, "TERM": "xterm",
               "OTEL_EXPORTER_OTLP_ENDPOINT": sink.otlp_http_endpoint}
        argv = user.argv(["bash", "-i"], env)
        sh = pexpect.spawn(argv[0], argv[1:], env={"PATH": "/usr/bin:/bin"}, encoding="utf-8",
                           timeout=30)
        sh.expect_exact(PROMPT)
        typed = f"{how} bash --noprofile --rcfile {rc} -i"
        sh.sendline(typed)
        sh.expect_exact(PROMPT)  # the root shell
        sh.sendline("id -u")
        sh.expect_exact("0\r\n")
        sh.expect_exact(PROMPT)
        sh.sendline("exit")
        sh.expect_exact(PROMPT)  # back in the user's shell
        sh.sendline("exit")
        sh.expect(pexpect.EOF)
        sh.close()
        outer = ended(sink, user.name)
        launch = next(c for c in outer["commands"] if c["command"] == typed)
        inner = child_of(sink, outer["session"]["session_id"])
        attrs = inner["session"]["attributes"]
        assert attrs["user.name"] == "root"
        assert attrs["shell.parent.span_id"] == launch["span_id"]
        assert [c["command"] for c in inner["commands"]] == ["id -u", "exit"]
    finally:
        root_env.stop_agent()
        shutil.rmtree(pub, ignore_errors=True)


def test_su_dash_session_links_to_the_command(sink, tmp_path):
    why = missing_tools() or default_view().problem or (
        None if have("bash") else "bash is not installed")
    if why:
        pytest.skip(why)
    pub = public_dir("shellspan-root-rc-")
    try:
        rc, inner_env = root_rc(pub, sink.otlp_http_endpoint)
        env = ShellEnv(tmp_path / "outer", sink.otlp_http_endpoint)
        argv = rc_files(env, "bash")
        sh = pexpect.spawn(argv[0], argv[1:], env=env.env, encoding="utf-8", timeout=30)
        sh.expect_exact(PROMPT)
        typed = f"su - -c 'bash --noprofile --rcfile {rc} -i'"
        sh.sendline(typed)
        sh.expect_exact(PROMPT)
        sh.sendline("echo $TRACEPARENT.")
        sh.expect_exact(".\r\n")  # su - cleared it
        sh.expect_exact(PROMPT)
        sh.sendline("exit")
        sh.expect_exact(PROMPT)
        sh.sendline("exit")
        sh.expect(pexpect.EOF)
        sh.close()
        outer = ended(sink, env.user)
        launch = next(c for c in outer["commands"] if c["command"] == typed)
        inner = child_of(sink, outer["session"]["session_id"])
        assert inner["session"]["attributes"]["shell.parent.span_id"] == launch["span_id"]
    finally:
        env.stop_agent()
        inner_env.stop_agent()
        shutil.rmtree(pub, ignore_errors=True)
