"""Ending a session on SIGHUP and SIGTERM: the session ends as a ``hangup`` (129) or a
``signal`` (143), then the signal does what it did before (by default: terminate the process
with that signal's status).

``install_signal_handlers_for(session)`` is all a shell calls (from its main thread); the
``SignalWatch`` below explains why the work is done on a watcher thread.
"""

from __future__ import annotations

import _thread
import os
import time
from collections.abc import Callable

TYPE_CHECKING = False  # avoid importing typing on the start-up path
if TYPE_CHECKING:  # pragma: no cover
    from shellspan.session import Session


def install_signal_handlers_for(s: Session,
                                on_signal: Callable[[int], None] | None = None) -> None:
    """End ``s`` on SIGHUP (reason ``hangup``, code 129) and SIGTERM (``signal``, 143), then
    let the signal do what it did before (default: terminate with that signal's status).

    Must be called from the main thread (elsewhere it does nothing). See ``SignalWatch``."""
    if s.disabled:
        return  # nothing to record: the signals keep their own handling
    try:  # the C module behind `signal`, which builds its enums at import (~0.5 ms at start-up)
        import _signal as signal
    except ImportError:  # pragma: no cover
        import signal

    watch = SignalWatch(s, on_signal, signal)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        try:
            prev = signal.getsignal(sig)
            if prev == signal.SIG_IGN:
                continue
            watch.previous[sig] = prev if callable(prev) and prev is not signal.default_int_handler \
                else None
            signal.signal(sig, watch.handler)
        except (ValueError, OSError):  # not the main thread, or no such signal
            continue
    if not watch.previous:
        return
    watch.arm()
    s._signal_watch = watch
    if not s._awaiting_ready:
        watch.start()  # else at the first prompt (``Session.ready``), with the export thread


class SignalWatch:
    """SIGHUP/SIGTERM handling for one session.

    A Python-level signal handler runs only on the main thread, and only once that thread is
    back in the interpreter loop. A shell waiting at its prompt sits in a blocking call (GNU
    readline's ``select``, which runs pending handlers only when it is itself interrupted): a
    signal caught just before that call, or by another thread, leaves the handler pending until
    the next keystroke, and the shell never exits. And a handler that does real work (ending
    the session, flushing the exporter) can interrupt the very code that holds the locks that
    work needs.

    So the work is done on a watcher thread. The C-level handler writes each signal's number to
    a pipe (``signal.set_wakeup_fd``, taken only when nobody else has it, taken back at each
    command); the Python handler writes it too and then waits (bounded) for the watcher. The
    watcher ends the session on a helper thread (waiting at most the exit budget plus a grace
    period), then, unless the handler is already waiting, makes the main thread run it
    (``pthread_kill``, repeated until it did); the handler then calls the previous handler or
    restores the default action and re-raises the signal. If the main thread never gets there
    and the default action is what follows, the watcher makes the process die of the signal
    itself after a bounded time.
    """

    GRACE_S = 1.0  # beyond the exit budget, for the session's end and then for the main thread

    def __init__(self, s: Session, on_signal: Callable[[int], None] | None, signal) -> None:
        self.s = s
        self.on_signal = on_signal
        self.signal = signal
        self.previous: dict[int, object] = {}
        self.pid = os.getpid()
        self.main_ident = _thread.get_ident()
        self.r = self.w = -1
        self.started = False
        self.signum = 0  # the signal being handled (set by the watcher)
        self.done = False  # the session's end is over (or was given up on)
        self.final = False  # the main thread's handler has run after ``done``
        self.needs_nudge = True  # the main thread's handler has yet to run (or gave up waiting)
        self._done = _thread.allocate_lock()
        self._done.acquire()

    # --- main thread -------------------------------------------------------------------------

    def arm(self) -> None:
        try:
            self.r, self.w = os.pipe()
            os.set_blocking(self.w, False)
        except OSError:
            self.r = self.w = -1
            return
        self.rearm()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def rearm(self) -> None:
        """Make the pipe the wakeup fd again if nobody has one (an asyncio loop with signal
        handlers, such as IPython's prompt, takes it and gives it up as -1)."""
        if self.w < 0:
            return
        try:
            old = self.signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
            if old not in (-1, self.w):  # somebody else's: leave it to them
                self.signal.set_wakeup_fd(old)
        except (ValueError, OSError):  # not the main thread
            pass

    def _after_fork(self) -> None:
        """A forked child must not write its signals into the parent's pipe."""
        if self.w < 0:
            return
        try:
            old = self.signal.set_wakeup_fd(-1)
            if old != self.w:
                self.signal.set_wakeup_fd(old)
        except (ValueError, OSError):
            pass
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.r = self.w = -1

    def start(self) -> None:
        if self.started or self.r < 0:
            return
        self.started = True
        try:
            _thread.start_new_thread(self._watch, ())
        except RuntimeError:  # pragma: no cover - cannot start a thread
            self.started = False

    def handler(self, signum, frame) -> None:
        if os.getpid() != self.pid:  # a forked child: the session is not its own
            self._default(signum, frame)
            return
        if not self.done:
            self.needs_nudge = False  # this thread goes on to the end by itself
            if self.w >= 0:
                try:
                    os.write(self.w, bytes((signum,)))
                except OSError:
                    pass
                self.start()
            else:  # no pipe (fd limit): end the session here, as best we can
                self._end_session(signum)
                self.done = True
            s = self.s
            if s._end_owner == _thread.get_ident():
                # This thread was ending the session: let it finish; the watcher re-delivers
                # the signal once it is over.
                self.needs_nudge = True
                return
            if self._done.acquire(True, s.config.exit_budget_s + 2 * self.GRACE_S):
                self._done.release()  # an event: wake any other waiter too
            if not self.done:
                self.needs_nudge = True  # the watcher re-delivers the signal when it is done
                return
        if not self.final:
            self.final = True
            if self.on_signal is not None:
                self.on_signal(signum)
        self._default(signum, frame)

    def _default(self, signum, frame) -> None:
        prev = self.previous.get(signum)
        if callable(prev):
            prev(signum, frame)
            return
        signal = self.signal
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    # --- watcher thread ----------------------------------------------------------------------

    def _end_session(self, signum: int) -> None:
        reason = "hangup" if signum == self.signal.SIGHUP else "signal"
        try:
            self.s.end(reason, 128 + signum)
        except BaseException:  # noqa: BLE001 - the process must go on to its exit
            pass

    def _watch(self) -> None:
        wanted = (self.signal.SIGHUP, self.signal.SIGTERM)
        while not self.signum:
            try:
                data = os.read(self.r, 64)
            except OSError:
                return
            if not data:
                return
            if os.getpid() != self.pid:
                return
            for b in data:
                if b in wanted and b in self.previous:
                    self.signum = b
                    break
        self._finish(self.signum)

    def _finish(self, signum: int) -> None:
        s = self.s
        deadline = time.monotonic() + s.config.exit_budget_s + self.GRACE_S
        try:
            _thread.start_new_thread(self._end_session, (signum,))
        except RuntimeError:  # pragma: no cover
            pass
        while not s._end_done and time.monotonic() < deadline:
            time.sleep(0.005)
        self.done = True
        self._done.release()
        # Make the main thread run its handler now (it may be waiting in a blocking call with
        # the handler pending), until it has; repeated, as a signal that lands just before
        # such a call is lost to it.
        deadline = time.monotonic() + self.GRACE_S
        while not self.final and time.monotonic() < deadline:
            if self.needs_nudge:  # not while the handler is on its way (no second call)
                try:
                    self.signal.pthread_kill(self.main_ident, signum)
                except (OSError, ValueError, AttributeError):
                    break
            time.sleep(0.02)
        if not self.final and not callable(self.previous.get(signum)):
            die(signum)


def die(signum: int) -> None:
    """Terminate the process with ``signum``'s status from any thread (the ``signal`` module
    sets handlers from the main thread only); failing that, exit with 128 + signum."""
    code = 128 + signum

    def hard_exit() -> None:
        time.sleep(1.0)
        os._exit(code)

    try:
        _thread.start_new_thread(hard_exit, ())
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.signal(signum, None)  # SIG_DFL
        os.kill(os.getpid(), signum)
        time.sleep(1.0)
    except BaseException:  # noqa: BLE001
        pass
    os._exit(code)
