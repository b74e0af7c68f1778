"""``shellspan init bash|zsh``: print the hook script for the rc file.

The scripts are real files next to this module (``shellspan.bash``, ``shellspan.zsh``), checked
by ``bash -n``, ``zsh -n`` and shellcheck. They are static: the one substitution is the path of
the ``shellspan`` command, which the hooks use to start the agent.
"""

from __future__ import annotations

import os
import sys

SHELLS = ("bash", "zsh")
_HERE = os.path.dirname(os.path.abspath(__file__))


def shellspan_bin() -> str:
    """Absolute path of the ``shellspan`` command that the hooks start the agent with."""
    cand = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "shellspan")
    if os.access(cand, os.X_OK):
        return cand
    arg0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if arg0 and os.path.basename(arg0) == "shellspan" and os.access(arg0, os.X_OK):
        return arg0
    return "shellspan"


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def script_path(shell: str) -> str:
    """The hook file shipped for ``shell``."""
    if shell not in SHELLS:
        raise ValueError(f"unsupported shell {shell!r} (bash or zsh)")
    return os.path.join(_HERE, f"shellspan.{shell}")


def init_script(shell: str, bin_path: str | None = None) -> str:
    """The hook script for ``shell`` ("bash" or "zsh"), with the path of ``shellspan`` in it."""
    with open(script_path(shell), encoding="utf-8") as f:
        template = f.read()
    return template.replace("@BIN@", sh_quote(bin_path or shellspan_bin()))


def rc_line(shell: str, bin_path: str | None = None) -> str:
    """The line for ~/.bashrc or ~/.zshrc: it runs this ``shellspan`` by its absolute path, so it
    works in a new terminal whatever that terminal's PATH is."""
    return f'eval "$({sh_quote(bin_path or shellspan_bin())} init {shell})"\n'


def main(args: list[str]) -> int:
    """``shellspan init bash|zsh`` prints the hook script; with ``--rc`` the line to add to the
    rc file instead."""
    rc = "--rc" in args
    args = [a for a in args if a != "--rc"]
    if len(args) != 1 or args[0] not in SHELLS:
        sys.stderr.write("usage: shellspan init bash|zsh [--rc]\n")
        return 2
    sys.stdout.write(rc_line(args[0]) if rc else init_script(args[0]))
    return 0
