"""Identity from the system, with real processes: two unix users created for the test, the token
broker run as root on a temporary socket with a temporary key, and a sink in `required` mode
that trusts the broker's public key. Each user's Python and bash sessions run as that user
(`runuser -u USER --`) in a pty and must be stored under that user's name, verified; what a user
claims (`USER=`, the request line) changes nothing, and the children of a shell, even under
another uid, inherit nothing that mints tokens."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shellspan import semconv
from shellspan_testing.background import wait_for
from shellspan_testing.brokerproc import BrokerProcess
from shellspan_testing.posix_shell_helpers import PROMPT, SHELLSPAN, Shell, hook_file
from shellspan_testing.python_shell_helpers import run_session
from shellspan_testing.sinkproc import SinkProcess
from shellspan_testing.unix_users import UnixUser, UserView, missing_tools

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")
HOST = os.uname().nodename
TTL_S = 10  # the broker's shortest: renewals happen within every test below
SECRET = "shared-secret-for-one-trusted-machine-" + os.urandom(8).hex()


class World:
    """Two users, the broker, and a sink that trusts the broker's key (and a reader's key for
    the test's own queries, and a shared secret for the shared-secret tests)."""

    def __init__(self, tmp: Path, view: UserView) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ssp-identity-"))
        self.base.chmod(0o755)  # the users' homes, hooks and rc files live here
        self.view = view
        self.broker = BrokerProcess(ttl_s=TTL_S).start()
        self.broker_kid = json.loads(self.broker.jwks.read_text())["keys"][0]["kid"]
        self.users: list[UnixUser] = []
        self.users = [UnixUser(self.base, self.view), UnixUser(self.base, self.view)]
        reader = ec.generate_private_key(ec.SECP256R1())
        reader_pem = tmp / "reader.pub.pem"
        reader_pem.write_bytes(reader.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.root_secret = tmp / "sink-secret"
        self.root_secret.write_text(SECRET)
        self.root_secret.chmod(0o600)
        self.sink = SinkProcess(tmp / "sink", env={
            "SHELLSPAN_AUTH_MODE": "required", "SHELLSPAN_AUTH_LEEWAY": "1",
            "SHELLSPAN_AUTH_PUBLIC_KEYS": f"{self.broker.public_pem},{reader_pem}",
            "SHELLSPAN_AUTH_SECRET_FILE": str(self.root_secret)})
        now = int(time.time())
        self.sink.read_token = jwt.encode({"sub": "reader", "aud": "shellspan", "iat": now,
                                           "exp": now + 3600, "scope": "sessions:read"},
                                          reader, algorithm="ES256")
        self.sink.start()

    def close(self) -> None:
        for user in self.users:
            user.remove()
        self.sink.stop()
        self.broker.close()
        self.view.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def shell_env(self, user: UnixUser, **extra: str) -> dict[str, str]:
        return user.env(**{"OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.otlp_http_endpoint,
                           "SHELLSPAN_BROKER_SOCKET": self.broker.socket,
                           "SHELLSPAN_RUNTIME_DIR": str(user.home / "rt"),
                           "SHELLSPAN_AGENT_WATCH_INTERVAL": "0.2",
                           "SHELLSPAN_AGENT_IDLE_EXIT": "120", **extra})

    def python(self, user: UnixUser, commands: list[str], **extra: str) -> str:
        """A `shellspan python` session as ``user``; returns what it printed."""
        env = self.shell_env(user, **extra)
        _took, out, status = run_session({"PATH": os.environ["PATH"], "TERM": "xterm"}, commands,
                                         argv=user.argv([SHELLSPAN, "python", "-q"], env))
        assert status == 0, out
        return out

    def rc_file(self) -> Path:
        """The rc file of every test bash: a plain prompt and the hooks (readable by all)."""
        rc = self.base / "bashrc"
        rc.write_text(f"PS1='{PROMPT}'\nHISTFILE=/dev/null\nsource {hook_file(self.base, 'bash')}\n")
        rc.chmod(0o644)
        return rc

    def spawn_bash(self, user: UnixUser, **extra: str) -> Shell:
        """An instrumented interactive bash as ``user``, at its first prompt."""
        argv = ["bash", "--noprofile", "--rcfile", str(self.rc_file()), "-i"]
        return Shell(user.argv(argv, self.shell_env(user, **extra)),
                     {"PATH": os.environ["PATH"], "TERM": "xterm"})

    def bash(self, user: UnixUser, commands: list[str], **extra: str) -> list[str]:
        """An instrumented interactive bash as ``user``; returns each command's output."""
        shell = self.spawn_bash(user, **extra)
        try:
            outputs = [shell.run(line) for line in commands]
            shell.child.sendline("exit")
            shell.exit_status()
        finally:
            shell.close()
        return outputs

    def stop_agent(self, user: UnixUser) -> None:
        try:
            pid = int((user.home / "rt" / "agent.pid").read_text())
            os.kill(pid, 15)
        except (OSError, ValueError):
            pass

    def stored(self, since: float, shell_type: str, enduser: str, commands: int) -> dict:
        """The one ended session of ``shell_type`` verified as ``enduser`` started after
        ``since``, once its commands are stored."""
        def find():
            found = [s for s in self.sink.sessions(since=since, shell_type=shell_type, limit=1000)
                     if s["enduser_id"] == enduser and s["state"] == "ended"
                     and s["command_count"] >= commands]
            return found or None
        found = self.sink.wait_for(find, 60)
        assert len(found) == 1, found
        return found[0]

    def all_sessions(self, since: float) -> list[dict]:
        return self.sink.sessions(since=since, limit=1000)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    reason = missing_tools()
    view = UserView() if not reason else None
    reason = reason or view.problem
    if reason:
        if view:
            view.close()
        print(f"skipping: {reason}")
        pytest.skip(reason)
    w = World(tmp_path_factory.mktemp("identity"), view)
    yield w
    w.close()


@pytest.fixture
def since():
    return time.time()


def test_each_users_python_and_bash_sessions_are_stored_under_their_own_name(world, since):
    for user in world.users:
        world.python(user, ["x = 6 * 7", "print(x)"])
        world.bash(user, ["echo hello from bash", "true"])
        world.stop_agent(user)
    for user in world.users:
        for shell_type, commands in (("python", 2), ("bash", 2)):
            s = world.stored(since, shell_type, user.name, commands)
            assert (s["user_name"], s["enduser_id"], s["verified"]) == (user.name, user.name, True)
            attrs = world.sink.session(s["session_id"])["session"]["attributes"]
            assert attrs[semconv.AUTH_HOST] == HOST  # the host whose broker vouched
            assert attrs[semconv.AUTH_KEY_ID] == world.broker_kid  # with this key
    assert world.broker.tokens_for(world.users[0].name) and world.broker.tokens_for(world.users[1].name)
    assert all(s["verified"] for s in world.all_sessions(since))


def test_a_forged_USER_changes_nothing(world, since):
    alice, bob = world.users
    forged = {"USER": bob.name, "LOGNAME": bob.name, "USERNAME": bob.name}
    world.python(alice, ["'forged'"], **forged)
    world.bash(alice, ["echo forged"], **forged)
    world.stop_agent(alice)
    py = world.stored(since, "python", alice.name, 1)
    assert (py["user_name"], py["verified"]) == (alice.name, True)  # the uid decides, not $USER
    sh = world.stored(since, "bash", alice.name, 1)
    assert sh["verified"] and sh["user_name"] == bob.name  # a claim, kept apart from the proof
    assert not [s for s in world.all_sessions(since) if s["enduser_id"] == bob.name]


def test_a_user_cannot_obtain_a_token_for_another(world):
    alice, bob = world.users
    claims = alice.run([SHELLSPAN, "broker", "token", "--claims", "--socket", world.broker.socket],
                       alice.env(USER=bob.name, LOGNAME=bob.name, SUDO_USER=bob.name))
    assert claims.returncode == 0, claims.stderr
    assert f'"sub": "{alice.name}"' in claims.stdout and f'"uid": {alice.uid}' in claims.stdout
    # Whatever the request line says, the kernel's answer decides.
    asked = alice.run(["python3", "-c", (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({world.broker.socket!r})\n"
        f"s.sendall(b'TOKEN sub={bob.name} uid={bob.uid} root\\n')\n"
        "print(s.makefile().readline())")])
    token = asked.stdout.split()[-1]
    assert asked.stdout.startswith("OK ") and jwt.decode(
        token, options={"verify_signature": False})["sub"] == alice.name
    # A token signed by anything but a trusted host key is refused (none of the user's keys is).
    forged = jwt.encode({"sub": bob.name, "aud": "shellspan", "exp": int(time.time()) + 60},
                        ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                        headers={"kid": jwt.get_unverified_header(token)["kid"]})
    from shellspan_testing.otlp_builders import SessionSpec, post, request_for, session_spans

    body = request_for(session_spans(SessionSpec(user=bob.name))).SerializeToString()
    assert post(world.sink.otlp_http_endpoint, body,
                headers={"Authorization": f"Bearer {forged}"}).status == 401


def test_tokens_are_renewed_for_a_long_session(world, since):
    alice = world.users[0]
    before = world.broker.tokens_for(alice.name)
    env = world.shell_env(alice, SHELLSPAN_HEARTBEAT_INTERVAL="1")
    argv = alice.argv([SHELLSPAN, "python", "-q"], env)
    child = pexpect.spawn(argv[0], argv[1:], env={"PATH": os.environ["PATH"], "TERM": "xterm"},
                          encoding="utf-8", timeout=30, dimensions=(24, 200))
    try:
        child.expect_exact(">>> ")
        child.sendline("a = 1")
        child.expect_exact(">>> ")
        # Heartbeats go out every second; at half a token's life a new one is asked for. Three
        # new tokens mean the first has long expired (the sink allows 1 s of clock skew).
        world.sink.wait_for(lambda: world.broker.tokens_for(alice.name) >= before + 3, 90)
        child.sendline("b = 2")
        child.expect_exact(">>> ")
        child.sendeof()
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    s = world.stored(since, "python", alice.name, 2)
    detail = world.sink.session(s["session_id"])
    assert [c["command"] for c in detail["commands"]] == ["a = 1", "b = 2"]
    assert s["verified"] and s["duration_s"] > TTL_S


def _fd_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\d+ -> ", line)]


def test_children_of_a_shell_inherit_nothing_that_mints_tokens(world, since):
    alice = world.users[0]
    probe = ("import subprocess; print(subprocess.run(['sh', '-c', 'env; ls -l /proc/self/fd'], "
             "capture_output=True, text=True).stdout)")
    out = world.python(alice, [probe])
    assert "SHELLSPAN_AUTH" not in out and "eyJ" not in out  # no secret, no token
    fds = _fd_lines(out)
    assert fds and not [line for line in fds if "socket:" in line or "broker" in line], fds
    world.stored(since, "python", alice.name, 1)


def root_bash(world: World, tmp_path: Path, commands: list[str]) -> list[str]:
    """An instrumented interactive bash as root in shared-secret mode (the secret in root's
    0600 file); its agent is up before ``commands`` run. Returns their outputs."""
    home = world.base / "root-home"
    home.mkdir(exist_ok=True)
    runtime = tmp_path / "rt"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "USER": "root", "TERM": "xterm",
           "OTEL_EXPORTER_OTLP_ENDPOINT": world.sink.otlp_http_endpoint,
           "SHELLSPAN_BROKER_SOCKET": "off", "SHELLSPAN_AUTH_SECRET_FILE": str(world.root_secret),
           "SHELLSPAN_RUNTIME_DIR": str(runtime), "SHELLSPAN_AGENT_IDLE_EXIT": "60"}
    shell = Shell([*world.view.prefix(), "bash", "--noprofile", "--rcfile", str(world.rc_file()),
                   "-i"], env)
    try:
        shell.run("true")  # the first prompt starts the agent
        wait_for(lambda: _agent_up(runtime), 30, "the agent to start", 0.05)
        outputs = [shell.run(line) for line in commands]
        shell.child.sendline("exit")
        shell.exit_status()
    finally:
        shell.close()
        pid = runtime / "agent.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), 15)
    return outputs


def _agent_up(runtime: Path) -> bool:
    try:
        return Path(f"/proc/{int((runtime / 'agent.pid').read_text())}").exists()
    except (OSError, ValueError):
        return False


def test_runuser_children_of_a_root_shell_get_no_secret(world, since, tmp_path):
    """Root's shell in shared-secret mode: the secret sits in root's 0600 file, so a child run
    as another user has neither the secret nor a way to it, and asking the broker gets it a
    token for itself only."""
    bob = world.users[1]
    child_env, child_fds, read, token = root_bash(world, tmp_path, [
        f"runuser -u {bob.name} -- env",
        f"runuser -u {bob.name} -- ls -l /proc/self/fd",
        f"runuser -u {bob.name} -- cat {world.root_secret}; echo rc=$?",
        f"runuser -u {bob.name} -- env SHELLSPAN_BROKER_SOCKET={world.broker.socket} "
        f"{SHELLSPAN} broker token --claims"])
    assert SECRET not in child_env and "SHELLSPAN_AUTH_SECRET=" not in child_env
    fds = _fd_lines(child_fds)
    assert fds and not [line for line in fds if "secret" in line or "socket:" in line], fds
    assert SECRET not in read and "Permission denied" in read and "rc=1" in read
    assert f'"sub": "{bob.name}"' in token and '"sub": "root"' not in token
    s = world.stored(since, "bash", "root", 6)  # root's own session: verified by the secret
    assert s["verified"] and world.sink.session(s["session_id"])["session"]["attributes"][
        semconv.AUTH_HOST] == HOST


def test_runuser_children_inherit_no_descriptor_to_the_agent(world, tmp_path):
    """bash cannot mark a descriptor close-on-exec: the hooks hold none open into the runtime
    directory, so a child run as another user cannot write records in root's name."""
    bob = world.users[1]
    shell_fds, child_fds = root_bash(world, tmp_path, [
        "ls -l /proc/$$/fd", f"runuser -u {bob.name} -- ls -l /proc/self/fd"])
    runtime = str(tmp_path / "rt")
    assert not [line for line in _fd_lines(shell_fds) if runtime in line], shell_fds
    fds = _fd_lines(child_fds)
    assert fds and not [line for line in fds if runtime in line], fds


def test_shared_secret_mode_keeps_the_secret_out_of_every_environment(world, since):
    alice = world.users[0]
    secret_file = alice.write(".config/shellspan/secret", SECRET)  # alice's own 0600 copy
    extra = {"SHELLSPAN_BROKER_SOCKET": "off", "SHELLSPAN_AUTH_SECRET_FILE": str(secret_file)}
    environs: list[bytes] = []

    def snapshot() -> list[int]:
        """The environment of every process running as alice right now."""
        pids = alice.pids()
        for pid in pids:
            try:
                environs.append(Path(f"/proc/{pid}/environ").read_bytes())
            except OSError:
                continue
        return pids

    out = world.python(alice, [  # the Python shell looks at its own environment
        f"secret = open({str(secret_file)!r}).read().strip()",
        "print('leaked' if secret in open('/proc/self/environ').read() else 'not in environ')"],
        **extra)
    assert "not in environ" in out and "leaked" not in out.replace("'leaked'", "")
    shell = world.spawn_bash(alice, **extra)
    try:
        shell.run("true")
        world.sink.wait_for(lambda: (alice.home / "rt" / "agent.pid").exists(), 30)
        assert len(snapshot()) >= 2  # the shell and its agent at least
        shell.child.sendline("exit")
        shell.exit_status()
    finally:
        shell.close()
        world.stop_agent(alice)
    assert environs and not [e for e in environs if SECRET.encode() in e
                             or b"SHELLSPAN_AUTH_SECRET=" in e]
    for shell_type, n in (("python", 2), ("bash", 1)):
        s = world.stored(since, shell_type, alice.name, n)
        assert s["verified"] and s["user_name"] == alice.name


def test_a_secret_in_the_environment_is_ignored(world, since):
    """Put in the environment, the secret is refused by the shell side: it mints nothing, so a
    required-mode sink stores nothing, and the user is told once why."""
    alice = world.users[0]
    out = world.python(alice, ["'from the environment'"], SHELLSPAN_BROKER_SOCKET="off",
                       SHELLSPAN_AUTH_SECRET=SECRET, SHELLSPAN_DEBUG="1")
    assert out.count("SHELLSPAN_AUTH_SECRET in the environment is ignored") == 1
    world.python(alice, ["'after it'"])  # a session that is stored shows the sink has caught up
    world.stored(since, "python", alice.name, 1)
    commands = [c["command"] for s in world.all_sessions(since)
                for c in world.sink.session(s["session_id"])["commands"]]
    assert "'after it'" in commands and "'from the environment'" not in commands
