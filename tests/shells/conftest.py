"""Fixtures of the shell tests."""

from __future__ import annotations

import pytest

from shellspan_testing.posix_shell_helpers import Shell


@pytest.fixture
def shells():
    """Start interactive shells in ptys: `shells(argv, env)`; all are closed after the test."""
    started: list[Shell] = []

    def spawn(argv, env, **kw) -> Shell:
        sh = Shell(argv, env, **kw)
        started.append(sh)
        return sh

    yield spawn
    for sh in started:
        sh.close()
