"""IPython integration: ``%load_ext shellspan.ipython_ext`` or, in ``ipython_config.py``,
``c.InteractiveShellApp.extensions = ["shellspan.ipython_ext"]``; ``shellspan ipython`` starts
IPython with it loaded.

Each cell is one ``shell.command`` span, opened on IPython's ``pre_run_cell`` event and closed
on ``post_run_cell``. Its exit code is 1 (status ERROR) when the cell raised or did not compile,
the shell's status when a shell escape (``!cmd``) ran in it and failed (IPython keeps that in
``_exit_code``), and the script's status for a failing ``%%bash``-style cell magic. The session
ends when IPython exits: reason ``exit`` after ``exit``/``quit`` (or ``os._exit(n)``: code n),
``eof`` after Ctrl-D, ``hangup`` when the terminal goes away (SIGHUP, or reads from a hung-up
terminal), ``signal`` on SIGTERM. IPython itself is imported only by ``main``.
"""

from __future__ import annotations

import atexit
from typing import Any

from shellspan.endings import end_as_hangup, terminal_hung_up, wrap_os_exit
from shellspan.session import Command, Session
from shellspan.signals import install_signal_handlers_for

_recorder: _Recorder | None = None
_ABSENT = object()


class _Status(int):
    """A shell escape's status that an earlier cell left in ``_exit_code``, stored back as an
    equal int of this type at the start of each cell, so that a status the cell itself stores
    (a new object, even if equal) can be told from it."""

    __slots__ = ()
    __repr__ = int.__repr__


def shell_status(code: int) -> int:
    """A status as shells report it: IPython gives a process killed by signal N as -N."""
    return 128 - code if code < 0 else code


class _Recorder:
    def __init__(self, ip: Any, session: Session) -> None:
        self.ip = ip
        self.session = session
        self.command: Command | None = None
        self.exit_requested = False
        self._exit_code_before: object = _ABSENT
        self.restore_os_exit = wrap_os_exit(session, self.finish_running)

    def pre_run_cell(self, info: Any) -> None:
        text = (getattr(info, "raw_cell", None) or "").rstrip()
        if self.command is not None:  # nested run_cell: close the outer one first
            self.command.finish(0)
        ns = self.ip.user_ns
        before = ns.get("_exit_code", _ABSENT)
        if type(before) is int:
            before = ns["_exit_code"] = _Status(before)
        self._exit_code_before = before
        self.command = self.session.command(text) if text.strip() else None
        if self.command is not None:
            prompt = f"In [{getattr(self.ip, 'execution_count', '')}]: "
            self.session.command_started(self.command, (prompt, " " * len(prompt)))

    def post_run_cell(self, result: Any) -> None:
        cmd, self.command = self.command, None
        if cmd is not None:
            error = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec",
                                                                          None)
            status = self.ip.user_ns.get("_exit_code", _ABSENT)
            escaped = status is not self._exit_code_before and isinstance(status, int)
            if error is None:
                code = shell_status(int(status)) if escaped else 0
            elif isinstance(error, SystemExit):
                code = error.code if isinstance(error.code, int) else (0 if not error.code else 1)
            elif isinstance(getattr(error, "returncode", None), int) and error.returncode:
                code = shell_status(error.returncode)  # %%bash, or !cmd raising on failure
            else:
                code = 1
            cmd.finish(code, error if error is not None and code else None)
        if getattr(self.ip, "exit_now", False) or getattr(self.ip, "keep_running", True) is False:
            self.exit_requested = True
        self.session.prompt()

    def finish_running(self, exit_code: int | None) -> None:
        cmd, self.command = self.command, None
        if cmd is not None:
            cmd.finish(exit_code)

    def end(self) -> None:
        """End the session (a cell still running is stored as cut short)."""
        self.restore_os_exit()
        if not self.session._ended and terminal_hung_up():
            end_as_hangup(self.session)  # the end of input was the terminal going away
            return
        self.session.end("exit" if self.exit_requested else "eof", 0)


def load_ipython_extension(ip: Any) -> None:
    """Start a session for this IPython shell and record every cell."""
    global _recorder
    if _recorder is not None:
        return
    session = Session("ipython")
    session.start()
    install_signal_handlers_for(session)
    _recorder = _Recorder(ip, session)
    ip.events.register("pre_run_cell", _recorder.pre_run_cell)
    ip.events.register("post_run_cell", _recorder.post_run_cell)
    atexit.register(_recorder.end)  # runs before the session's own atexit handler (LIFO)


def unload_ipython_extension(ip: Any) -> None:
    """Stop recording and end the session (reason ``exit``)."""
    global _recorder
    rec, _recorder = _recorder, None
    if rec is None:
        return
    for name, fn in (("pre_run_cell", rec.pre_run_cell), ("post_run_cell", rec.post_run_cell)):
        try:
            ip.events.unregister(name, fn)
        except ValueError:
            pass
    rec.exit_requested = True
    rec.end()


def current_recorder() -> _Recorder | None:
    return _recorder


def main(argv: list[str] | None = None) -> int:
    """``shellspan ipython [IPYTHON ARGS...]``."""
    import sys

    try:
        from IPython import start_ipython
    except ImportError:
        sys.stderr.write("shellspan ipython: IPython is not installed "
                         "(pip install 'shellspan[ipython]')\n")
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    start_ipython(argv=["--ext=shellspan.ipython_ext", *args])
    rec = _recorder
    if rec is not None:
        rec.end()
        return rec.session.exit_code or 0
    return 0
