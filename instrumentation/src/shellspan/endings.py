"""Endings of a Python shell that are not an orderly exit, and how each is recorded.

* **The terminal went away** (window closed, SSH connection dropped). The kernel hangs the
  terminal up: reads return end-of-file and writes fail with EIO, so the console sees what looks
  like Ctrl-D or an I/O error, often before the SIGHUP that the shell it runs in forwards (and
  never, when that shell outlives its terminal). ``terminal_hung_up`` tells a hangup from Ctrl-D
  (a hung-up terminal's ioctls fail with EIO); ``end_as_hangup`` then ends the session and the
  process as SIGHUP does.
* **``os._exit(n)``** ends the process at once, skipping ``atexit`` and with it the session's
  end. ``wrap_os_exit`` makes ``os._exit`` end the session first (reason ``exit``, code n).
"""

from __future__ import annotations

import os
from collections.abc import Callable

TYPE_CHECKING = False  # avoid importing typing on the start-up path
if TYPE_CHECKING:  # pragma: no cover
    from shellspan.session import Session

HANGUP_CODE = 129  # 128 + SIGHUP, as shells report a process the hangup killed


def terminal_hung_up(fds: tuple[int, ...] = (0, 1, 2)) -> bool:
    """Whether the terminal on any of ``fds`` has been hung up. On a hung-up terminal every
    ioctl fails with EIO; on a live one ``tcgetpgrp`` works, on a pipe or file it fails with
    ENOTTY."""
    import errno

    for fd in fds:
        try:
            os.tcgetpgrp(fd)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return True
    return False


def end_as_hangup(session: Session) -> int:
    """The terminal is gone: end ``session`` as a hangup and the process as SIGHUP would.

    When the session handles SIGHUP (``shellspan.signals``), the signal is raised: the session
    ends ``hangup``/129 and the process dies of SIGHUP (or runs the program's own SIGHUP
    handler), exactly as when the signal arrives first. When SIGHUP is ignored (``nohup``), the
    session ends ``hangup`` with the status the process then exits with, 0, which is returned."""
    watch = session._signal_watch
    try:
        import _signal as signal
    except ImportError:  # pragma: no cover
        import signal
    if watch is not None and signal.SIGHUP in watch.previous and watch.pid == os.getpid():
        signal.raise_signal(signal.SIGHUP)
        session.end("hangup", HANGUP_CODE)  # a program's own handler returned: still a hangup
        return HANGUP_CODE
    session.end("hangup", 0)
    return 0


def wrap_os_exit(session: Session,
                 before: Callable[[int], None] | None = None) -> Callable[[], None]:
    """Make ``os._exit(n)`` end ``session`` first (reason ``exit``, code n), after calling
    ``before(n)`` (a console finishes its running command there). A forked child's
    ``os._exit`` is left alone: the session is its parent's. Returns a function that puts the
    original back. (A program that took ``os._exit`` or ``posix._exit`` before the wrapper was
    installed, or calls ``_exit`` through ctypes, still leaves the session unended.)"""
    real = os._exit
    pid = os.getpid()

    def _exit(status: int) -> None:
        if os.getpid() == pid:
            try:
                if before is not None:
                    before(status)
                session.end("exit", status)
            except BaseException:  # noqa: BLE001 - the process exits whatever happens
                pass
        real(status)

    _exit.__wrapped__ = real  # type: ignore[attr-defined]
    os._exit = _exit

    def restore() -> None:
        if os._exit is _exit:
            os._exit = real

    return restore
