"""IPython integration: ``%load_ext shellspan.ipython_ext`` or, in ``ipython_config.py``,
``c.InteractiveShellApp.extensions = ["shellspan.ipython_ext"]``; ``shellspan ipython`` starts
IPython with it loaded.

Each cell is one ``shell.command`` span, opened on IPython's ``pre_run_cell`` event and closed
on ``post_run_cell`` (exit code 1 and status ERROR when the cell raised or did not compile).
The session ends when IPython exits: reason ``exit`` after ``exit``/``quit``, ``eof`` after
Ctrl-D, ``hangup``/``signal`` on SIGHUP/SIGTERM. IPython itself is imported only by ``main``.
"""

from __future__ import annotations

import atexit
from typing import Any

from shellspan.session import Command, Session, install_signal_handlers_for

_recorder: _Recorder | None = None


class _Recorder:
    def __init__(self, ip: Any, session: Session) -> None:
        self.ip = ip
        self.session = session
        self.command: Command | None = None
        self.exit_requested = False

    def pre_run_cell(self, info: Any) -> None:
        text = (getattr(info, "raw_cell", None) or "").rstrip()
        if self.command is not None:  # nested run_cell: close the outer one first
            self.command.finish(0)
        self.command = self.session.command(text) if text.strip() else None

    def post_run_cell(self, result: Any) -> None:
        cmd, self.command = self.command, None
        if cmd is not None:
            error = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec",
                                                                          None)
            code = 1 if error is not None else 0
            if isinstance(error, SystemExit):
                code = error.code if isinstance(error.code, int) else (0 if not error.code else 1)
            cmd.finish(code, error if code else None)
        if getattr(self.ip, "exit_now", False) or getattr(self.ip, "keep_running", True) is False:
            self.exit_requested = True

    def end(self) -> None:
        if self.command is not None:
            self.command.finish(1, "session ended during the cell")
            self.command = None
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
