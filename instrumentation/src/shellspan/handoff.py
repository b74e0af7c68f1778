"""The detached send at exit.

A shell's exit waits at most its flush budget (50 ms by default) for its last spans to be sent;
what is left is spooled. When the endpoint was working (only slow) or was never tried (a quick
exit), the spooled entries are handed to a detached helper process, ``shellspan spool send``,
which sends them over the next seconds: the exit does not wait, and the record does not wait for
the next session to drain the spool. What the helper cannot send stays in the spool.
"""

from __future__ import annotations

import os
import sys
import time

from shellspan.config import Config
from shellspan.spool import Spool
from shellspan.transport import HttpSender, Outcome, sender_for


def _terminal_signals() -> tuple[int, ...]:
    # `_signal`, the C module behind `signal`: it does not build enums (this runs at exit).
    import _signal as signal

    return (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP)


def spawn_sender(paths: list[str], deadline_s: float, signal: str = "traces") -> None:
    """Start ``shellspan spool send`` for these spool entries and return at once.

    The helper is spawned (not forked: a fork could inherit a lock held by the export thread),
    in a session of its own with no terminal, and gives up after ``deadline_s``. A shell often
    exits because its terminal went away, and the hangup's SIGHUP, sent to the shell's whole
    process group, can reach the helper before it has left that group: so it starts with the
    terminal's signals blocked, and discards them before unblocking (``main``)."""
    try:
        null = os.devnull
        os.posix_spawn(sys.executable,
                       [sys.executable, "-m", "shellspan.cli", "spool", "send",
                        f"--deadline={deadline_s}", f"--signal={signal}", *paths],
                       dict(os.environ),
                       file_actions=[(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
                                     (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                                     (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0)],
                       setsid=True, setsigmask=_terminal_signals())
    except (OSError, AttributeError, TypeError, ValueError):
        pass  # stays in the spool for the next session


def _drop_terminal_signals() -> None:
    """Discard terminal signals that reached this helper before it left the shell's process
    group (pending while blocked), then unblock them: it has no terminal now."""
    import _signal as signal

    sigs = _terminal_signals()
    for sig in sigs:
        signal.signal(sig, signal.SIG_IGN)  # setting SIG_IGN discards a pending one
    signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)


def send_entries(spool: Spool, sender: HttpSender, names: list[str],
                 deadline_s: float = 15.0) -> int:
    """Send the named spool entries, retrying until ``deadline_s``; returns how many went.

    Entries are taken by name from ``spool`` (a path given for one is reduced to its name, so
    nothing outside the spool is ever read) and claimed as every sender does; an entry another
    process claimed or sent meanwhile is skipped."""
    deadline = time.monotonic() + deadline_s
    todo = [os.path.basename(n) for n in names]
    delay, sent, first = 0.2, 0, True
    while todo and (first or time.monotonic() < deadline):
        first = False
        name = todo.pop(0)
        claim = spool.claim_entry(name)
        if claim is None:
            continue  # somebody else is sending it, or it is gone
        claimed, body = claim
        result = sender.send(body, timeout_s=3.0)
        if result.outcome is Outcome.RETRYABLE:
            spool.release(claimed)
            todo.append(name)
            time.sleep(min(result.retry_after or delay, 5.0))
            delay = min(delay * 2, 3.0)
        else:
            spool.ack(claimed)
            sent += result.outcome is Outcome.OK
    return sent


def main(argv: list[str]) -> int:
    """``shellspan spool send [--deadline=S] [--signal=traces|logs] FILE...``: the helper's
    work."""
    from shellspan.export import SIGNALS

    _drop_terminal_signals()
    deadline, files, signal = 15.0, [], SIGNALS["traces"]
    for arg in argv:
        if arg.startswith("--signal="):
            signal = SIGNALS.get(arg.split("=", 1)[1], signal)
            continue
        if arg.startswith("--deadline="):
            try:
                deadline = float(arg.split("=", 1)[1])
            except ValueError:
                sys.stderr.write(f"shellspan spool send: bad deadline {arg!r}\n")
                return 2
        else:
            files.append(arg)
    config = Config()
    spool = Spool(signal.spool_dir(config), max_bytes=config.spool_max_bytes,
                  max_files=config.spool_max_files)
    send_entries(spool, sender_for(config, signal.name), files, deadline)
    return 0
