"""The ``shellspan`` command (shell side).

``shellspan python`` is on the start-up path of a shell, so this module imports nothing heavy
and dispatches by hand; the other subcommands may take their time.
"""

from __future__ import annotations

import sys

USAGE = """usage: shellspan COMMAND [ARGS]

commands:
  python [-q]            an instrumented Python REPL
  ipython [ARGS...]      IPython with the shellspan extension loaded
  init bash|zsh [--rc]   print the hook script (--rc: the line for ~/.bashrc or ~/.zshrc)
  record [--input] [-- COMMAND ...]
                         run COMMAND (default: your shell) in a recorded terminal
  agent [--daemon|stop]  the per-user agent of bash/zsh sessions
  broker [COMMAND]       the host's token broker (root service; keygen, public-key, token)
  status | doctor        configuration, agent, spool contents and endpoint reachability
  spool flush            resend spooled sessions now
  spool send FILE...     send these spool entries (used by a shell's exit)
  auto-install [DIR]     write shellspan-auto.pth (instrument every interactive Python)
  auto-uninstall [DIR]   remove it
"""


def _status() -> int:
    """The shell side's part of ``status``/``doctor``; 1 when it found a problem."""
    from shellspan.config import Config
    from shellspan.spool import Spool
    from shellspan.transport import Outcome, sender_for

    cfg = Config()
    spool = Spool(cfg.spool_dir, max_bytes=cfg.spool_max_bytes, max_files=cfg.spool_max_files)
    n, size = spool.size()
    print(f"endpoint:   {cfg.endpoint} ({cfg.protocol})")
    print(f"disabled:   {cfg.disabled}")
    from shellspan.auth import TokenSource

    print(f"auth:       {TokenSource.from_config(cfg).describe()}")
    print(f"spool:      {spool.dir} ({n} entries, {size} bytes)")
    from shellspan.export import LOGS

    logs = Spool(LOGS.spool_dir(cfg))
    n_logs, size_logs = logs.size()
    if n_logs:
        print(f"            recordings: {n_logs} entries, {size_logs} bytes in {logs.dir}")
    if spool.problem:
        print(f"            refused: {spool.problem}")
    result = sender_for(cfg).probe(timeout_s=2.0)
    state = ("reachable" if result.outcome is not Outcome.RETRYABLE or result.answered
             else f"unreachable ({result.error})")
    print(f"endpoint:   {state} (HTTP {result.status or '-'})")
    return 1 if spool.problem else 0


def _spool_flush() -> int:
    """Resend what the spool holds: spans, then terminal recordings."""
    from shellspan.export import LOGS, TRACES, Exporter

    left = 0
    for signal in (TRACES, LOGS):
        exp = Exporter(signal=signal)
        total = 0
        while True:
            sent = exp.drain_spool(limit=100)
            total += sent
            if not sent or exp.breaker.state != exp.breaker.CLOSED:
                break
        status = exp.status()
        left += status.spooled_entries
        what = "spooled requests" if signal is TRACES else "spooled recording requests"
        print(f"resent {total} {what}; {status.spooled_entries} left"
              + (f" ({status.last_error})" if status.spooled_entries and status.last_error
                 else ""))
    return 0 if left == 0 else 1


def _posix(cmd: str, rest: list[str]) -> int:
    if cmd == "init":
        from shellspan.posix.hooks import main as init_main

        return init_main(rest)
    if cmd == "agent":
        from shellspan.posix.agent import main as agent_main

        return agent_main(rest)
    problem = _status()
    from shellspan.posix.status import print_status

    doctor = cmd == "doctor"
    return print_status(doctor=doctor) or (problem if doctor else 0)


def _without_traceback(cmd: str, rest: list[str]) -> int:
    """The bash/zsh commands run from rc files and by hand: a failure is one line on stderr
    (the traceback only with SHELLSPAN_DEBUG=1), never a traceback in a user's terminal."""
    try:
        return _posix(cmd, rest)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001
        import os

        if os.environ.get("SHELLSPAN_DEBUG", "").lower() in ("1", "true", "yes", "on"):
            raise
        sys.stderr.write(f"shellspan {cmd}: {exc}\n")
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "python":
        from shellspan.repl import main as repl_main

        return repl_main(rest)
    if cmd == "ipython":
        from shellspan.ipython_ext import main as ipython_main

        return ipython_main(rest)
    if cmd == "record":
        from shellspan.recording.recorder import main as record_main

        return record_main(rest)
    if cmd == "broker":
        from shellspan.broker import main as broker_main

        return broker_main(rest)
    if cmd in ("init", "agent", "status", "doctor"):
        return _without_traceback(cmd, rest)
    if cmd == "spool" and rest[:1] == ["flush"]:
        return _spool_flush()
    if cmd == "spool" and rest[:1] == ["send"]:
        from shellspan.handoff import main as send_main

        return send_main(rest[1:])
    if cmd in ("auto-install", "auto-uninstall"):
        from shellspan.auto import install_pth, uninstall_pth

        path = (install_pth if cmd == "auto-install" else uninstall_pth)(rest[0] if rest else None)
        print(path)
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
