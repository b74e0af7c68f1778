"""Real unix users for identity tests (root only): created with useradd, removed afterwards, and
commands run as them with ``runuser -u USER --`` and exactly the environment given.

The test users must be able to run this checkout's ``shellspan``: its interpreter, virtual
environment and sources. When one of their directories cannot be searched by others (a Python
built under root's 0700 home, say), the commands run in a private mount namespace where that
directory is replaced by an empty, searchable one into which only the paths needed are bound
back; nothing changes on the host.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[3]


def missing_tools() -> str:
    """Why real users cannot be used here ('' when they can)."""
    if os.geteuid() != 0:
        return "needs root (useradd, runuser)"
    for tool in ("useradd", "userdel", "runuser", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


def _blocked_directories(paths: list[Path]) -> dict[Path, set[str]]:
    """Directories on the way to ``paths`` that others cannot search, with the child names
    under each that lead to a needed path."""
    blocked: dict[Path, set[str]] = {}
    for target in paths:
        target = target.resolve()
        for parent in reversed(target.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                child = target.relative_to(parent).parts[0]
                blocked.setdefault(parent, set()).add(child)
    return blocked


class UserView:
    """The command prefix that lets other users reach this checkout's interpreter."""

    def __init__(self) -> None:
        needed = [Path(sys.executable), Path(sys.base_prefix), Path(sys.prefix), REPO]
        self.blocked = _blocked_directories(needed)
        nested = [b for b in self.blocked
                  if any(b != other and other in b.parents for other in self.blocked)]
        self.problem = (f"nested unsearchable directories {nested}: cannot give the test users "
                        "a view of the interpreter") if nested else ""
        if self.blocked and not self.problem:
            probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "true"],
                                   capture_output=True, text=True, timeout=30)
            if probe.returncode != 0:
                self.problem = (f"{sorted(map(str, self.blocked))} cannot be searched by other "
                                f"users and no mount namespace can be made: {probe.stderr.strip()}")
        self.stage = Path(tempfile.mkdtemp(prefix="ssp-view-")) if self.blocked else None

    def prefix(self) -> list[str]:
        if not self.blocked:
            return []
        lines = ["set -e"]
        for n, (directory, children) in enumerate(sorted(self.blocked.items())):
            for child in sorted(children):
                staged = self.stage / f"{n}-{child}"
                staged.mkdir(exist_ok=True)
                lines.append(f"mount --bind '{directory / child}' '{staged}'")
            lines.append(f"mount -t tmpfs -o mode=755 shellspan-view '{directory}'")
            for child in sorted(children):
                staged = self.stage / f"{n}-{child}"
                lines.append(f"mkdir -p '{directory / child}'")
                lines.append(f"mount --bind '{staged}' '{directory / child}'")
        lines.append('exec "$@"')
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        return [unshare, "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(lines),
                "sh"]

    def close(self) -> None:
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)


_default_view: UserView | None = None


def default_view() -> UserView:
    """The view shared by every test of the run (it is the same for all users)."""
    global _default_view
    if _default_view is None:
        _default_view = UserView()
    return _default_view


def public_dir(prefix: str) -> Path:
    """A directory every user can read and enter (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


class UnixUser:
    """A throwaway local user with its own home under ``base`` (a directory others can enter)."""

    def __init__(self, base: Path, view: UserView | None = None) -> None:
        self.name = "ssp" + uuid.uuid4().hex[:9]
        self.home = base / self.name
        self.view = view or default_view()
        self.bin = BIN / "shellspan"  # reachable by the user through the view
        subprocess.run(["useradd", "--create-home", "--home-dir", str(self.home),
                        "--shell", "/bin/bash", "--user-group", self.name],
                       check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def env(self, **extra: str) -> dict[str, str]:
        """A login-like environment for this user's shells."""
        env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home),
               "USER": self.name, "LOGNAME": self.name, "SHELL": "/bin/bash",
               "LANG": os.environ.get("LANG", "C.UTF-8"), "TERM": "xterm",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.update(extra)
        return env

    def argv(self, command: list[str], env: dict[str, str]) -> list[str]:
        """Run ``command`` as this user with exactly ``env`` (nothing of the caller's)."""
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # the caller's PATH may lack sbin
        return [*self.view.prefix(), runuser, "-u", self.name, "--", "/usr/bin/env", "-i",
                *[f"{k}={v}" for k, v in env.items()], *command]

    def run(self, command: list[str], env: dict[str, str] | None = None,
            **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(command, env or self.env()), capture_output=True,
                              text=True, **kwargs)

    def write(self, relative: str, text: str, mode: int = 0o600) -> Path:
        """A file in the user's home, owned by the user."""
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chown(path.parent, self.uid, self.gid)
        os.chown(path, self.uid, self.gid)
        path.chmod(mode)
        return path

    def pids(self) -> list[int]:
        """The processes running as this user now."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == self.uid:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def remove(self) -> None:
        """Stop what the tests left running as this user, then delete the user."""
        self.kill_processes()
        subprocess.run(["userdel", "--remove", self.name], capture_output=True, timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)

    def kill_processes(self) -> None:
        """Stop every process running as this user (SIGTERM, then SIGKILL), by pid."""
        deadline = time.monotonic() + 10
        sig = signal.SIGTERM
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
            sig = signal.SIGKILL if time.monotonic() > deadline - 5 else sig
