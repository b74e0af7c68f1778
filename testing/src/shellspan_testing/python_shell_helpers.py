"""Real `shellspan python` sessions in a pty, for tests: a clean environment and a session run."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

SHELLSPAN = str(Path(sys.executable).with_name("shellspan"))
PROMPT = ">>> "


def shell_env(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a fresh user: no inherited OTel or shellspan settings, its own home and
    spool, and a unique service name (``OTEL_SERVICE_NAME``) that tells its sessions apart: a
    shell's ``user.name`` comes from its uid, so every session of a test run shares one."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "SHELLSPAN_", "TRACE", "BAGGAGE", "PYTHONSTARTUP"))}
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update({
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "u" + uuid.uuid4().hex[:10],
        "SHELLSPAN_SPOOL_DIR": str(tmp_path / "spool"),
        "SHELLSPAN_BROKER_SOCKET": "off",  # a host's own broker must not answer for tests
        "HOME": str(home),
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra)
    return env


def tagged(sink, env: dict[str, str] | str, **filters) -> list[dict]:
    """The sessions of shells run with ``env`` (or with this service name), newest first."""
    tag = env if isinstance(env, str) else env["OTEL_SERVICE_NAME"]
    return [s for s in sink.sessions(limit=10000, **filters) if s["service_name"] == tag]


def run_session(env: dict[str, str], commands: list[str], cwd: str | None = None,
                argv: list[str] | None = None) -> tuple[float, str, int | None]:
    """Run `commands` at the prompt, then Ctrl-D: (seconds from Ctrl-D to exit, output, status).
    ``argv`` replaces `shellspan python -q` (e.g. the same run as another user)."""
    import pexpect

    argv = argv or [SHELLSPAN, "python", "-q"]
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=20,
                          cwd=cwd, dimensions=(24, 200))
    try:
        child.expect_exact(PROMPT)
        out = []
        for line in commands:
            child.sendline(line)
            child.expect_exact(PROMPT)
            out.append(child.before)
        time.sleep(0.2)
        started = time.monotonic()
        child.sendeof()
        child.expect(pexpect.EOF, timeout=15)
        took = time.monotonic() - started
        out.append(child.before)
    finally:
        child.close(force=True)
    return took, "".join(out).replace("\r\n", "\n"), child.exitstatus
