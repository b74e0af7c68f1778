"""The per-user runtime directory: the sessions' journals, the agent's pid file, lock, state, log.

This is the one statement of the rule in Python; the hook scripts compute the same path in
shell (they cannot start Python at every shell start), and a test holds them to this function.

The directory the environment asks for is ``SHELLSPAN_RUNTIME_DIR`` if set, else
``$XDG_RUNTIME_DIR/shellspan`` when that directory exists, else ``/tmp/shellspan-UID``. It is
used only if it is (or can be created as) a real directory, not a symbolic link, owned by this
user and closed to everybody else (mode 0700, fixed if it is not). Anything else, such as a
directory another user created first, a symbolic link, or an environment inherited from
another user (``su`` without ``-`` keeps root's variables), is refused, and the next candidate
is tried: ``$XDG_RUNTIME_DIR/shellspan``, ``/tmp/shellspan-UID``, then a directory in the
user's home (``~/.local/state/shellspan/run-HOST``, home from the password database).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import NamedTuple


class Choice(NamedTuple):
    """Where this user's agent and hooks meet."""

    path: str  # the directory to use ("" if no candidate was usable)
    wanted: str  # the one the environment asked for
    refused: str  # why ``wanted`` was not used ("" if it is ``path``)


def wanted_dir(env: Mapping[str, str]) -> str:
    explicit = env.get("SHELLSPAN_RUNTIME_DIR", "")
    if explicit:
        return explicit
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "shellspan")
    return default_dir()


def default_dir() -> str:
    return f"/tmp/shellspan-{os.getuid()}"


def home_dir() -> str:
    """``~/.local/state/shellspan/run-HOST``, the home directory from the password database
    (an inherited ``$HOME`` may be another user's)."""
    import pwd
    import socket

    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return ""
    return os.path.join(home, ".local", "state", "shellspan", f"run-{socket.gethostname()}")


def candidates(env: Mapping[str, str]) -> list[str]:
    out = [wanted_dir(env)]
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg):
        out.append(os.path.join(xdg, "shellspan"))
    out.append(default_dir())
    home = home_dir()
    if home:
        out.append(home)
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return seen


def problem(path: str) -> str:
    """Why ``path`` cannot be this user's runtime directory ("" if it can). Creates it (0700)
    when it is missing and closes it to others (chmod 0700) when it is this user's."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700)
        except OSError as exc:
            return f"cannot be created ({exc.strerror})"
        try:
            st = os.lstat(path)
        except OSError as exc:
            return f"cannot be read ({exc.strerror})"
    except OSError as exc:
        return f"cannot be reached ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return f"belongs to another user (uid {st.st_uid})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
        except OSError as exc:
            return f"has mode {mode:04o}, which cannot be changed ({exc.strerror})"
    return ""


def choose(env: Mapping[str, str] | None = None) -> Choice:
    """The runtime directory for this user and environment (see the module's docstring)."""
    env = os.environ if env is None else env
    cands = candidates(env)
    refused = ""
    for c in cands:
        why = problem(c)
        if not why:
            return Choice(c, cands[0], refused)
        if c == cands[0]:
            refused = why
    return Choice("", cands[0], refused)


def path(name: str, directory: str) -> str:
    """A file of the runtime directory (``agent.pid``, ``state.json``, a journal...)."""
    return os.path.join(directory, name)


def open_private(file: str, flags: int = os.O_WRONLY) -> int:
    """Open ``file`` for writing, created 0600 if missing, never through a symbolic link, and
    made 0600 if it existed with another mode; returns the descriptor."""
    fd = os.open(file, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd
