"""The hook scripts compute the runtime directory in shell (they cannot start Python at every
shell start); this holds bash and zsh to the Python rule, ``shellspan.posix.runtime``."""

from __future__ import annotations

import subprocess

import pytest

from shellspan.posix.hooks import script_path
from shellspan.posix.runtime import runtime_dir
from shellspan_testing.posix_shell_helpers import SHELLS, have

# Print the directory the hooks chose, then make the exit hook a no-op (no record is left
# anywhere by these shells).
PROBE = {
    "bash": ['bash', '--noprofile', '--norc', '-i', '-c',
             'source "$1"; printf "%s\\n" "$__shellspan_dir"; __shellspan_done=1; rm -f -- "$__shellspan_hf"', 'probe'],
    "zsh": ['zsh', '-f', '-i', '-c',
            'source "$1"; print -r -- "$__shellspan_dir"; __shellspan_done=1', 'probe'],
}


def environments(tmp):
    xdg = tmp / "xdg"
    xdg.mkdir()
    return {
        "explicit": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "explicit")},
        "explicit wins over xdg": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "e2"),
                                   "XDG_RUNTIME_DIR": str(xdg)},
        "xdg": {"XDG_RUNTIME_DIR": str(xdg)},
        "xdg missing": {"XDG_RUNTIME_DIR": str(tmp / "no-such-dir")},
        "xdg empty": {"XDG_RUNTIME_DIR": ""},
        "explicit empty": {"SHELLSPAN_RUNTIME_DIR": "", "XDG_RUNTIME_DIR": str(xdg)},
        "nothing set": {},
    }


CASES = ["explicit", "explicit wins over xdg", "xdg", "xdg missing", "xdg empty",
         "explicit empty", "nothing set"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", CASES)
def test_hooks_follow_the_python_rule(tmp_path, shell, case):
    if not have(shell):
        pytest.skip(f"{shell} is not installed")
    extra = environments(tmp_path)[case]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb",
           "SHELLSPAN_AGENT_AUTOSTART": "0", **extra}
    done = subprocess.run([*PROBE[shell], script_path(shell)], env=env, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == runtime_dir(env), done.stdout
