"""The runtime directory is the user's own: a directory another user made first, a symbolic link
planted in /tmp, or a directory inherited from root's environment (``su`` without ``-``) is
refused with one line on stderr, the shell records through a directory of its own instead, and
the other user gets nothing. Real unix users (useradd), their shells run through a pty with
``runuser`` and ``su``; every file the hooks and the agent write is 0600."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shellspan.posix.hooks import init_script
from shellspan_testing.posix_shell_helpers import PROMPT, SHELLS, Shell, ShellEnv, have, rc_files
from shellspan_testing.unix_users import UnixUser, default_view, missing_tools, public_dir

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

ALL_SHELLS = [pytest.param(s, marks=pytest.mark.skipif(not have(s), reason=f"{s} not installed"))
              for s in SHELLS]


@pytest.fixture(scope="module")
def sink(module_sink):
    return module_sink


@pytest.fixture
def victim(request):
    why = missing_tools() or default_view().problem
    if why:
        pytest.skip(why)
    base = public_dir("shellspan-users-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    user = UnixUser(base)
    request.addfinalizer(user.remove)
    yield user
    default = Path(f"/tmp/shellspan-{user.uid}")
    user.kill_processes()  # its shells and agents, before their directories go
    if default.is_symlink() or default.is_file():
        default.unlink()
    elif default.is_dir():
        shutil.rmtree(default, ignore_errors=True)


def fallback_dir(user: UnixUser) -> Path:
    return user.home / ".local" / "state" / "shellspan" / f"run-{socket.gethostname()}"


def rc_for(user: UnixUser, shell: str) -> None:
    """The user's own rc file: a prompt the tests wait for, then the hooks (a public copy)."""
    hook = user.write(f".shellspan.{shell}", init_script(shell, str(user.bin)))
    if shell == "bash":
        user.write(".bashrc", f"PS1='{PROMPT}'\nHISTFILE=/dev/null\nsource {hook}\n")
    else:
        user.write(".zshrc", f"PROMPT='{PROMPT}'\nRPROMPT=\nunsetopt PROMPT_SP\n"
                             f"HISTFILE=/dev/null\nsource {hook}\n")


def user_shell(shells, user: UnixUser, shell: str, endpoint: str) -> Shell:
    rc_for(user, shell)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(user.home), "USER": user.name,
           "LOGNAME": user.name, "TERM": "xterm", "LANG": "C.UTF-8",
           "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "SHELLSPAN_AGENT_WATCH_INTERVAL": "0.2"}
    argv = ["bash", "-i"] if shell == "bash" else ["zsh", "-i"]
    return shells(user.argv(argv, env), {"PATH": "/usr/bin:/bin"})


def recorded(sink, user: str, n_commands: int, runtime: Path) -> list[str]:
    def find():
        found = [s for s in sink.sessions(user=user, limit=10) if s["user_name"] == user
                 and s["state"] == "ended"]
        if not found:
            return None
        d = sink.session(found[0]["session_id"])
        return d if d and len(d["commands"]) >= n_commands else None
    try:
        return [c["command"] for c in sink.wait_for(find, 60)["commands"]]
    except TimeoutError:
        log = runtime / "agent.log"
        raise AssertionError(f"not recorded; {sink.sessions(user=user)}; files "
                             f"{sorted(p.name for p in runtime.iterdir())}; agent log: "
                             f"{log.read_text() if log.exists() else '-'}") from None


def attacker_fifo(directory: Path) -> int:
    """What an attacker leaves for the victim: a FIFO anyone can write, a pid file naming a
    live process (this one), and a reader on the FIFO."""
    os.mkfifo(directory / "events", 0o666)
    (directory / "events").chmod(0o666)
    (directory / "agent.pid").write_text(f"{os.getpid()}\n")
    return os.open(directory / "events", os.O_RDONLY | os.O_NONBLOCK)


def drained(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("shell", ALL_SHELLS)
@pytest.mark.parametrize("trap", ["foreign directory", "symbolic link"])
def test_a_planted_default_dir_is_refused_and_the_victim_still_recorded(sink, victim, shells,
                                                                        shell, trap):
    planted = Path(f"/tmp/shellspan-{victim.uid}")
    target = public_dir("shellspan-attacker-")
    target.chmod(0o777)
    if trap == "symbolic link":
        planted.symlink_to(target)
    else:
        shutil.rmtree(target)
        planted.mkdir(mode=0o777)
        planted.chmod(0o777)
        target = planted
    reader = attacker_fifo(target)
    try:
        sh = user_shell(shells, victim, shell, sink.otlp_http_endpoint)
        reason = "is a symbolic link" if trap == "symbolic link" else "belongs to another user"
        said = f"shellspan: not using {planted}: it {reason}; recording through {fallback_dir(victim)}"
        assert said in sh.child.before.replace("\r\n", "\n"), sh.child.before
        assert sh.run("echo victim-secret") == "victim-secret\n"
        sh.child.sendline("exit 3")
        assert sh.exit_status()[0] == 3
        assert recorded(sink, victim.name, 2, fallback_dir(victim)) == [
            "echo victim-secret", "exit 3"]
        assert b"victim-secret" not in drained(reader)
        assert sorted(p.name for p in target.iterdir()) == ["agent.pid", "events"]
        mode = stat.S_IMODE(fallback_dir(victim).stat().st_mode)
        assert mode == 0o700 and fallback_dir(victim).stat().st_uid == victim.uid
    finally:
        os.close(reader)
        if target != planted:
            shutil.rmtree(target, ignore_errors=True)


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_su_without_dash_records_the_user_in_a_directory_of_their_own(sink, victim, shells,
                                                                      shell, tmp_path):
    """root's SHELLSPAN_RUNTIME_DIR and XDG_RUNTIME_DIR survive `su user`: the user's shell
    refuses them (it cannot even enter them), says so once, records through its own
    directory; `shellspan doctor` names the problem; nothing prints a traceback."""
    root_rt = tmp_path / "root-rt"
    root_xdg = tmp_path / "root-xdg"
    for d in (root_rt, root_xdg):
        d.mkdir(mode=0o700)
    rc_for(victim, shell)
    root_env = ShellEnv(tmp_path / "root", sink.otlp_http_endpoint)
    env = {k: v for k, v in root_env.env.items() if k not in ("XDG_STATE_HOME", "HOME")}
    env.update(HOME=str(tmp_path), SHELLSPAN_RUNTIME_DIR=str(root_rt),
               XDG_RUNTIME_DIR=str(root_xdg), PS1=PROMPT)
    # root's shell sees the interpreter the way the test user does (unix_users.UserView)
    root = shells([*victim.view.prefix(), "bash", "--noprofile", "--norc", "-i"], env)
    su = f"su {victim.name}" if shell == "bash" else f"su -s /bin/zsh {victim.name}"
    root.child.sendline(su)
    root.child.expect_exact(PROMPT)  # the user's shell
    shown = root.child.before.replace("\r\n", "\n")
    refusal = [line for line in shown.splitlines() if line.startswith("shellspan:")]
    assert refusal == [f"shellspan: not using {root_rt}: it cannot be created or reached; "
                       f"recording through /tmp/shellspan-{victim.uid}"], shown
    assert root.run("id -un") == f"{victim.name}\n"
    doctor = root.run(f"{victim.bin} doctor; echo rc=$?")
    assert "Traceback" not in doctor and "rc=1" in doctor, doctor
    assert f"{root_rt} refused" in doctor and f"runtime dir: /tmp/shellspan-{victim.uid}" in doctor
    agent = root.run(f"{victim.bin} agent --daemon; echo rc=$?")
    assert "Traceback" not in agent and "rc=0" in agent, agent
    root.run("echo as-the-user")
    root.child.sendline("exit")
    root.child.expect_exact(PROMPT)  # back in root's shell
    root.child.sendline("exit")
    root.exit_status()
    texts = recorded(sink, victim.name, 5, Path(f"/tmp/shellspan-{victim.uid}"))
    assert texts[0] == "id -un" and "echo as-the-user" in texts and texts[-1] == "exit"
    assert not list(root_rt.iterdir()) and not list(root_xdg.iterdir())


def test_every_file_of_the_runtime_dir_is_private(sink, tmp_path):
    """Written with a permissive umask: the directory is 0700, every file 0600, whoever made
    it (a hook or the agent), including a journal a shell leaves behind when no agent runs."""
    if not have("bash"):
        pytest.skip("bash is not installed")
    env = ShellEnv(tmp_path / "e", sink.otlp_http_endpoint)
    env.runtime.chmod(0o755)  # the agent closes it
    argv = rc_files(env, "bash")
    def private(d: Path) -> set[str]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        for f in d.iterdir():
            st = f.lstat()
            assert not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, (
                f, oct(st.st_mode))
        return {f.name.split(".")[0] for f in d.iterdir()}

    old = os.umask(0o022)
    try:
        sh = Shell(argv, env.env)
        sh.run("echo one")
        env.wait_agent()
        sh.run("echo two")
        env.wait_state(lambda state: state.get("sessions"))
        assert {"r", "agent", "state", "h"} <= private(env.runtime)
        sh.child.sendline("exit")
        sh.exit_status()
        quiet = ShellEnv(tmp_path / "q", sink.otlp_http_endpoint, SHELLSPAN_AGENT_AUTOSTART="0")
        q = Shell(rc_files(quiet, "bash"), quiet.env)
        q.run("echo queued")
        q.child.sendline("exit")
        q.exit_status()
    finally:
        os.umask(old)
        env.stop_agent()
    assert "r" in private(quiet.runtime), "the shell left no journal"
    private(env.runtime)


def test_doctor_names_a_refused_directory(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "SHELLSPAN_RUNTIME_DIR": str(tmp_path / "link")}
    (tmp_path / "link").symlink_to("/")
    done = subprocess.run([str(Path(sys.executable).parent / "shellspan"), "doctor"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{tmp_path / 'link'} refused: it is a symbolic link" in done.stdout, done.stdout
    assert f"runtime dir: {tmp_path / 'shellspan'}" in done.stdout
