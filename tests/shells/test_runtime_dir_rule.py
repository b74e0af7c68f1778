"""The hook scripts compute the runtime directory in shell (they cannot start Python at every
shell start); this holds bash and zsh to the Python rule, ``shellspan.posix.runtime``: the same
directory in every environment, and one line on stderr exactly when the wanted one is refused."""

from __future__ import annotations

import os
import subprocess

import pytest

from shellspan.posix.hooks import script_path
from shellspan.posix.runtime import choose
from shellspan_testing.posix_shell_helpers import SHELLS, have

# Print the directory the hooks chose, then make the exit hook a no-op (no record is left
# anywhere by these shells).
PROBE = {
    "bash": ['bash', '--noprofile', '--norc', '-i', '-c',
             'source "$1"; printf "%s\\n" "$__shellspan_dir"; __shellspan_done=1;'
             ' rm -f -- "$__shellspan_hf"', 'probe'],
    "zsh": ['zsh', '-f', '-i', '-c',
            'source "$1"; print -r -- "$__shellspan_dir"; __shellspan_done=1', 'probe'],
}


def environments(tmp):
    xdg = tmp / "xdg"
    xdg.mkdir()
    (tmp / "target").mkdir()
    (tmp / "link").symlink_to(tmp / "target")
    (tmp / "file").write_text("")
    loose = tmp / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    cases = {
        "explicit": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "explicit")},
        "explicit, parents missing": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "a" / "b" / "rt")},
        "explicit wins over xdg": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "e2"),
                                   "XDG_RUNTIME_DIR": str(xdg)},
        "xdg": {"XDG_RUNTIME_DIR": str(xdg)},
        "xdg missing": {"XDG_RUNTIME_DIR": str(tmp / "no-such-dir")},
        "xdg empty": {"XDG_RUNTIME_DIR": ""},
        "explicit empty": {"SHELLSPAN_RUNTIME_DIR": "", "XDG_RUNTIME_DIR": str(xdg)},
        "nothing set": {},
        "loose mode (fixed by the agent)": {"SHELLSPAN_RUNTIME_DIR": str(loose)},
        "symbolic link refused": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "link"),
                                  "XDG_RUNTIME_DIR": str(xdg)},
        "a file refused": {"SHELLSPAN_RUNTIME_DIR": str(tmp / "file"),
                           "XDG_RUNTIME_DIR": str(xdg)},
    }
    if os.geteuid() == 0:
        foreign = tmp / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        cases["another user's refused"] = {"SHELLSPAN_RUNTIME_DIR": str(foreign),
                                           "XDG_RUNTIME_DIR": str(xdg)}
    return cases


CASES = ["explicit", "explicit, parents missing", "explicit wins over xdg", "xdg", "xdg missing",
         "xdg empty", "explicit empty", "nothing set", "loose mode (fixed by the agent)",
         "symbolic link refused", "a file refused", "another user's refused"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", CASES)
def test_hooks_follow_the_python_rule(tmp_path, shell, case):
    if not have(shell):
        pytest.skip(f"{shell} is not installed")
    envs = environments(tmp_path)
    if case not in envs:
        pytest.skip("needs root to make a directory of another user")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb",
           "SHELLSPAN_AGENT_AUTOSTART": "0", **envs[case]}
    done = subprocess.run([*PROBE[shell], script_path(shell)], env=env, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    chosen = done.stdout.splitlines()[-1]
    python = choose(env)
    assert chosen == python.path, (done.stdout, python)
    said = [line for line in done.stderr.splitlines() if line.startswith("shellspan:")]
    if python.refused:
        assert said == [f"shellspan: not using {python.wanted}: it {said[0].split(': it ', 1)[1]}"]
        assert said[0].endswith(f"; recording through {python.path}")
    else:
        assert said == []
