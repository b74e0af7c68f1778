"""``shellspan python``: an interactive console like the standard REPL, recorded as a session.

Every complete statement typed at the prompt is one ``shell.command`` span (text redacted,
exit code 1 and status ERROR when it raises or does not compile). The session ends with reason
``eof`` (Ctrl-D), ``exit`` (``exit()``, ``sys.exit(n)``, ``os._exit(n)``: code n), ``hangup``
(the terminal closed: SIGHUP, or reads from a hung-up terminal), ``signal`` (SIGTERM) or
``crash`` (an exception escaped the console itself); docs/python-shells.md has the full table.

The console behaves as ``code.InteractiveConsole`` (same prompts, buffering, tracebacks, syntax
error reports and ``sys.last_*`` values) but is built on ``codeop`` alone: ``code`` imports
``traceback`` (and, through it, ``textwrap``) at load, which costs milliseconds before the first
prompt; here ``traceback`` is imported only when there is something to show.
"""

from __future__ import annotations

import os
import sys
import time

from shellspan.endings import HANGUP_CODE, end_as_hangup, terminal_hung_up, wrap_os_exit
from shellspan.session import Command, Session
from shellspan.signals import install_signal_handlers_for

ACTIVE = False  # an instrumented console is running in this process


class InstrumentedConsole:
    """An interactive console (the ``code.InteractiveConsole`` interface) whose commands are
    recorded in ``session``."""

    def __init__(self, session: Session, locals: dict | None = None,
                 filename: str = "<console>") -> None:
        if locals is None:
            locals = {"__name__": "__console__", "__doc__": None}
        self.locals = locals
        self.filename = filename
        self.session = session
        self.eof = False
        self.buffer: list[str] = []
        self._compiler = None
        self._prompted = False
        self._command: Command | None = None
        self._source = ""
        self._error: BaseException | None = None

    # --- the code.InteractiveConsole interface ------------------------------------------------

    @property
    def compile(self):
        """A ``codeop.CommandCompiler`` (remembers ``from __future__`` statements typed)."""
        if self._compiler is None:
            from codeop import CommandCompiler

            self._compiler = CommandCompiler()
        return self._compiler

    def write(self, data: str) -> None:
        sys.stderr.write(data)

    def resetbuffer(self) -> None:
        self.buffer = []

    def finish_running(self, exit_code: int | None, error: BaseException | str | None = None
                       ) -> None:
        """End the command that is running, if any (the process is about to end)."""
        cmd, self._command = self._command, None
        if cmd is not None:
            cmd.finish(exit_code, error)

    def raw_input(self, prompt: str = "") -> str:
        if not self._prompted:
            self._prompted = True
            self.session.ready()
        self.session.prompt()
        try:
            return input(prompt)
        except EOFError:
            self.eof = True
            raise

    def push(self, line: str) -> bool:
        self.buffer.append(line)
        more = self.runsource("\n".join(self.buffer), self.filename)
        if not more:
            self.resetbuffer()
        return more

    def interact(self, banner: str | None = None, exitmsg: str | None = None) -> None:
        if not hasattr(sys, "ps1"):
            sys.ps1 = ">>> "
        if not hasattr(sys, "ps2"):
            sys.ps2 = "... "
        if banner is None:
            self.write(f"{_banner()}\n({type(self).__name__})\n")
        elif banner:
            self.write(f"{banner}\n")
        more = False
        while True:
            try:
                try:
                    line = self.raw_input(sys.ps2 if more else sys.ps1)
                except EOFError:
                    self.write("\n")
                    break
                more = self.push(line)
            except KeyboardInterrupt:
                self.write("\nKeyboardInterrupt\n")
                self.resetbuffer()
                more = False
        if exitmsg is None:
            self.write(f"now exiting {type(self).__name__}...\n")
        elif exitmsg:
            self.write(f"{exitmsg}\n")

    def runsource(self, source: str, filename: str = "<input>", symbol: str = "single") -> bool:
        """Compile and run ``source``; True when more input is needed. Records the command."""
        self._source, self._error, self._command = source, None, None
        start_ns = time.time_ns()
        try:
            try:
                codeobj = self.compile(source, filename, symbol)
            except (OverflowError, SyntaxError, ValueError):
                self.showsyntaxerror(filename)
            else:
                if codeobj is None:
                    return True  # incomplete: wait for more lines
                self.runcode(codeobj)
        except SystemExit as exc:
            if self._command is not None:
                code_ = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                self._command.finish(code_, exc if code_ else None)
            raise
        if not source.strip():
            return False
        if self._command is not None:
            self._command.finish(1 if self._error is not None else 0, self._error)
        else:  # did not compile
            self.session.record_command(source.rstrip(), start_ns=start_ns, exit_code=1,
                                        error=self._error or "SyntaxError")
        self._command = None
        return False

    def runcode(self, codeobj) -> None:
        """Execute a code object; exceptions other than SystemExit are shown, not raised."""
        if self._source.strip():  # an empty line is no command
            self._command = self.session.command(self._source.rstrip())
            self.session.command_started(self._command, (str(getattr(sys, "ps1", ">>> ")),
                                                         str(getattr(sys, "ps2", "... "))))
        try:
            exec(codeobj, self.locals)
        except SystemExit:
            raise
        except BaseException:
            self.showtraceback()

    def showsyntaxerror(self, filename: str | None = None, **kwargs) -> None:
        """Show the syntax error that just occurred (no stack: it has none)."""
        etype, value, tb = sys.exc_info()
        self._error = value or SyntaxError("invalid syntax")
        if filename and etype is SyntaxError:
            try:  # report the console's file name, not the parser's "<string>"
                msg, (_dummy, lineno, offset, line) = value.args
            except ValueError:
                pass
            else:
                value = SyntaxError(msg, (filename, lineno, offset, line))
        _set_last(etype, value, tb)
        if sys.excepthook is sys.__excepthook__:
            import traceback

            self.write("".join(traceback.format_exception_only(etype, value)))
        else:
            sys.excepthook(etype, value, tb)

    def showtraceback(self) -> None:
        """Show the exception that just occurred, without this console's own frame."""
        etype, value, last_tb = ei = sys.exc_info()
        self._error = value
        _set_last(etype, value, last_tb)
        try:
            if sys.excepthook is sys.__excepthook__:
                import traceback

                self.write("".join(traceback.format_exception(etype, value, last_tb.tb_next)))
            else:
                sys.excepthook(etype, value, last_tb)
        finally:
            last_tb = ei = None  # noqa: F841 - break the reference cycle


def _set_last(etype, value, tb) -> None:
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value


def _banner() -> str:
    return (f"Python {sys.version} on {sys.platform}\n"
            'Type "help", "copyright", "credits" or "license" for more information.')


def run_console(session: Session, *, banner: str | None = None, locals: dict | None = None,
                run_startup: bool = True, interactive_hook: bool = True) -> tuple[str, int]:
    """Run an instrumented console until it ends; returns (exit reason, exit code).

    Reasons: ``exit`` (``exit()``, ``sys.exit(n)``), ``eof`` (Ctrl-D, end of input), ``hangup``
    (the terminal went away: the caller ends the session with ``endings.end_as_hangup``) and
    ``crash`` (an exception escaped the console itself; its traceback is shown). While it
    runs, ``os._exit(n)`` ends the session (``exit``, n) before the process. The caller owns
    the session (starting it before and ending it after)."""
    global ACTIVE
    ACTIVE = True
    if locals is None:
        locals = {"__name__": "__main__", "__doc__": None}
    if interactive_hook:
        hook = getattr(sys, "__interactivehook__", None)
        if hook is not None and not getattr(hook, "_shellspan", False):
            try:
                hook()  # readline, completion and history, as the bare interpreter does
            except Exception:  # noqa: BLE001
                pass
    console = InstrumentedConsole(session, locals)
    restore_exit = wrap_os_exit(session, console.finish_running)
    startup = os.environ.get("PYTHONSTARTUP") if run_startup else None
    if startup and os.path.isfile(startup):
        try:
            with open(startup, encoding="utf-8") as f:
                exec(compile(f.read(), startup, "exec"), locals)
        except Exception:  # noqa: BLE001 - like the interpreter: report and go on
            console.showtraceback()
    try:
        console.interact(_banner() if banner is None else banner, exitmsg="")
    except SystemExit as exc:
        code_ = exc.code
        if code_ is None:
            return "exit", 0
        if isinstance(code_, int):
            return "exit", code_
        sys.stderr.write(f"{code_}\n")
        return "exit", 1
    except BaseException as exc:
        if terminal_hung_up():  # reading or writing the vanished terminal failed
            return "hangup", HANGUP_CODE
        console.finish_running(1, exc)
        _report_crash()
        return "crash", 1
    finally:
        ACTIVE = False
        restore_exit()
    if terminal_hung_up():  # the end of input was the terminal going away, not Ctrl-D
        return "hangup", HANGUP_CODE
    return ("eof" if console.eof else "exit"), 0


def _report_crash() -> None:
    """Show the exception that stopped the console, as the interpreter shows an uncaught one."""
    try:
        import traceback

        sys.stderr.write("shellspan: the console stopped on an unexpected error:\n")
        traceback.print_exc()
    except Exception:  # noqa: BLE001 - stderr itself may be what failed
        pass


def main(argv: list[str] | None = None, shell_type: str = "python", *,
         run_startup: bool = True) -> int:
    """``shellspan python [-q]``: an instrumented REPL; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet = "-q" in argv or bool(sys.flags.quiet)
    session = Session(shell_type)
    session.start(defer_export=True)
    install_signal_handlers_for(session)
    reason, code_ = run_console(session, banner="" if quiet else None, run_startup=run_startup)
    if reason == "hangup":
        return end_as_hangup(session)
    session.end(reason, code_)
    return code_
