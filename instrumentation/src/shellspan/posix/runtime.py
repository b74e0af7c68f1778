"""The per-user runtime directory: the agent's FIFO, pid file, lock, state and log.

This is the one statement of the rule in Python; the hook scripts compute the same path in
shell (they cannot start Python at every shell start), and a test holds them to this function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """``SHELLSPAN_RUNTIME_DIR`` if set, else ``$XDG_RUNTIME_DIR/shellspan`` when that directory
    exists, else ``/tmp/shellspan-UID``."""
    env = os.environ if env is None else env
    explicit = env.get("SHELLSPAN_RUNTIME_DIR", "")
    if explicit:
        return explicit
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "shellspan")
    return f"/tmp/shellspan-{os.getuid()}"


def path(name: str, directory: str | None = None) -> str:
    """A file of the runtime directory (``events``, ``agent.pid``, ``state.json``...)."""
    return os.path.join(directory or runtime_dir(), name)
