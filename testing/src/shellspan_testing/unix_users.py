"""Real unix users for tests that need more than one (run as root): ``useradd`` a user, give it
a ``shellspan`` command it can run, start its shells through a pty with ``runuser`` or ``su``.

The test environment's Python may live where other users cannot read it (a pyenv under
/root), so the user's ``shellspan`` is a launcher that runs a Python the user can execute with
the checkout's ``instrumentation/src`` on its path (the shell side needs only the standard
library unless tokens are minted)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from shellspan_testing.sinkproc import REPO

SOURCES = REPO / "instrumentation" / "src"


class NoPython(RuntimeError):
    """No Python the new user may execute: tests that need one skip, saying so."""


def can_create_users() -> str | None:
    """None when this process can create users, else why not."""
    if os.geteuid() != 0:
        return "needs root (useradd, runuser)"
    for tool in ("useradd", "userdel", "runuser", "su"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def public_dir(prefix: str) -> Path:
    """A directory every user can read and enter (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


class UnixUser:
    """A throw-away login account with a home directory under ``base``."""

    def __init__(self, base: Path, prefix: str = "sst") -> None:
        self.name = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.home = base / self.name
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(self.home),
                        "--shell", "/bin/bash", "--user-group", self.name],
                       check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.bin = base / f"shellspan-{self.name}"
        try:
            self.home.mkdir(mode=0o755)
            os.chown(self.home, self.uid, self.gid)
            self._launcher()
        except BaseException:
            self.remove()
            raise

    def _launcher(self) -> None:
        python = self._python()
        self.bin.write_text(f"#!/bin/sh\nPYTHONPATH={SOURCES} exec {python} -m shellspan.cli"
                            ' "$@"\n')
        self.bin.chmod(0o755)

    def _python(self) -> str:
        for cand in (os.path.realpath(sys.executable), "/usr/bin/python3",
                     "/usr/local/bin/python3"):
            if self.run(cand, "-c", "import sys; assert sys.version_info >= (3, 10)",
                        check=False).returncode == 0:
                return cand
        raise NoPython(f"no Python >= 3.10 that a new user can run (tried {sys.executable},"
                       " /usr/bin/python3, /usr/local/bin/python3)")

    def argv(self, *argv: str, env: dict[str, str] | None = None) -> list[str]:
        """A command line that runs ``argv`` as this user, with ``env`` its whole environment."""
        return [shutil.which("runuser") or "runuser", "-u", self.name, "--", "/usr/bin/env", "-i",
                *(f"{k}={v}" for k, v in (env or {"PATH": "/usr/bin:/bin"}).items()), *argv]

    def run(self, *argv: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command as this user (``runuser``)."""
        return subprocess.run(self.argv(*argv, env=env), check=check, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def file(self, path: Path, text: str) -> Path:
        """A file of this user."""
        path.write_text(text)
        os.chown(path, self.uid, self.gid)
        return path

    def stop_agents(self, *runtime_dirs: Path) -> None:
        """Stop the agents this user's shells started (by the pid in each directory's pid file)."""
        for d in runtime_dirs:
            try:
                pid = int((d / "agent.pid").read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                if os.stat(f"/proc/{pid}").st_uid != self.uid:
                    continue  # not this user's process (the pid file is stale)
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)

    def remove(self) -> None:
        subprocess.run(["userdel", self.name], capture_output=True, timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)
        try:
            self.bin.unlink()
        except OSError:
            pass
