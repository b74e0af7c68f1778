"""Drive interactive bash and zsh with the shellspan hooks through a pty (tests and bench)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from .background import running, wait_for

BIN = Path(sys.executable).parent
SHELLSPAN = str(BIN / "shellspan")
PROMPT = "SSP> "
SHELLS = ("bash", "zsh")


def have(shell: str) -> bool:
    return shutil.which(shell) is not None


def hook_file(directory: Path, shell: str) -> Path:
    """`shellspan init SHELL` written to a file (what the docs recommend sourcing)."""
    path = directory / f"hook.{shell}"
    if not path.exists():
        out = subprocess.run([SHELLSPAN, "init", shell], check=True, capture_output=True,
                             text=True, timeout=30).stdout
        path.write_text(out)
    return path


class ShellEnv:
    """Isolated directories and environment for one test's shells and agent."""

    def __init__(self, root: Path, endpoint: str, runtime: Path | None = None,
                 **extra: str) -> None:
        self.root = root
        self.runtime = runtime or root / "rt"
        self.home = root / "home"
        for d in (self.runtime, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        self.user = "u" + uuid.uuid4().hex[:10]
        keep = ("PATH", "LANG", "LC_ALL", "SHELLSPAN_DEBUG")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update({
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home), "USER": self.user, "LOGNAME": self.user,
            "TERM": "xterm", "LANG": os.environ.get("LANG", "C.UTF-8"),
            "SHELLSPAN_RUNTIME_DIR": str(self.runtime),
            "SHELLSPAN_SPOOL_DIR": str(root / "spool"),
            "XDG_STATE_HOME": str(root / "state"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "SHELLSPAN_HEARTBEAT_INTERVAL": "600",
            "SHELLSPAN_AGENT_WATCH_INTERVAL": "0.2",
            "SHELLSPAN_AGENT_IDLE_EXIT": "120",
        })
        self.env.update(extra)

    def agent_pid(self) -> int | None:
        try:
            return int((self.runtime / "agent.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def wait_agent(self, timeout: float = 15.0) -> int:
        def running() -> int | None:
            pid = self.agent_pid()
            return pid if pid and Path(f"/proc/{pid}").exists() else None

        log = self.runtime / "agent.log"
        return wait_for(running, timeout, "the agent to start", 0.05,
                        lambda: log.read_text() if log.exists() else "")

    def state(self) -> dict:
        """The agent's state file ({} until it is written)."""
        try:
            return json.loads((self.runtime / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_state(self, predicate, timeout: float = 15.0):
        """Wait until ``predicate(state)`` is truthy (the agent rewrites its state file when its
        sessions change); returns its value."""
        return wait_for(lambda: predicate(self.state()), timeout, "the agent's state", 0.05,
                        lambda: self.state())

    def stop_agent(self, timeout: float = 5.0) -> None:
        """Stop the agent this environment started (by its pid), SIGKILL if it lingers."""
        pid = self.agent_pid()
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            wait_for(lambda: not running(pid), timeout, f"agent {pid} to exit", 0.05)
        except TimeoutError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def rc_files(env: ShellEnv, shell: str, *, instrumented: bool = True, before: str = "",
             after: str = "") -> list[str]:
    """Write the test rc file; returns the shell's argv (user dotfiles never matter)."""
    hook = f"source {hook_file(env.root, shell)}\n" if instrumented else ""
    if shell == "bash":
        rc = env.root / "bashrc"
        rc.write_text(f"PS1='{PROMPT}'\nPS2='> '\nHISTFILE=/dev/null\nHISTCONTROL=ignorespace\n"
                      f"{before}{hook}{after}")
        return ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
    zdot = env.root / "zdot"
    zdot.mkdir(exist_ok=True)
    (zdot / ".zshrc").write_text(
        f"PROMPT='{PROMPT}'\nPROMPT2='> '\nRPROMPT=\nunsetopt PROMPT_SP\nsetopt histignorespace\n"
        f"HISTFILE=/dev/null\nHISTSIZE=1000\n{before}{hook}{after}")
    env.env["ZDOTDIR"] = str(zdot)
    return ["zsh", "-d", "-i"]


class Shell:
    """One interactive shell in a pty."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path | None = None,
                 timeout: float = 20.0) -> None:
        import pexpect

        self.pexpect = pexpect
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8",
                                   timeout=timeout, cwd=str(cwd) if cwd else None,
                                   dimensions=(40, 250))
        self.child.expect_exact(PROMPT)

    @property
    def pid(self) -> int:
        return self.child.pid

    def run(self, line: str) -> str:
        """Type a line, wait for the next prompt; returns what was printed in between."""
        self.child.sendline(line)
        self.child.expect_exact(PROMPT)
        out = self.child.before.replace("\r\n", "\n")
        first, _, rest = out.partition("\n")  # drop the echoed command line
        return _strip_escapes(rest)

    def paste(self, text: str) -> str:
        """A bracketed paste (several lines, or a long one), then Enter."""
        self.child.send("\x1b[200~" + text.replace("\n", "\r") + "\x1b[201~\r")
        self.child.expect_exact(PROMPT)
        return _strip_escapes(self.child.before.replace("\r\n", "\n"))

    def children(self) -> list[tuple[int, str]]:
        """(pid, command name) of the shell's child processes."""
        return children_of(self.pid)

    def wait_child(self, name: str, timeout: float = 20.0) -> int:
        """Wait until the shell runs a child process called ``name`` (a command is really
        running, not just typed); returns its pid."""
        return wait_for(lambda: next((pid for pid, comm in self.children() if comm == name),
                                     None),
                        timeout, f"{name} to run under pid {self.pid}", 0.01, self.children)

    def exit_status(self, timeout: float = 10.0) -> tuple[int | None, int | None]:
        self.child.expect(self.pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus, self.child.signalstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


def children_of(ppid: int) -> list[tuple[int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            data = (entry / "stat").read_text()
        except OSError:
            continue
        comm = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        if int(fields[1]) == ppid and fields[0] not in ("Z", "X"):
            out.append((int(entry.name), comm))
    return out


def stored_shell_session(sh: Shell, sink, timeout: float = 60.0) -> str:
    """The id of the shell's session once the sink has it with its first command (one command,
    ``echo TP=$TRACEPARENT``, is typed to learn the id; the agent reads the session's journal
    whenever it is up, so nothing more needs typing)."""
    import re

    out = sh.run("echo TP=$TRACEPARENT")
    session_id = re.search(r"TP=00-([0-9a-f]{32})-", out).group(1)
    sink.wait_for(lambda: (d := sink.session(session_id)) and d["commands"], timeout)
    return session_id


def _strip_escapes(s: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r", "", s)
