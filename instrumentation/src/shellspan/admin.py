"""Custom admin shells: a mixin whose start and exit emit the session.

    import cmd
    from shellspan.admin import InstrumentedShell

    class BillingShell(InstrumentedShell, cmd.Cmd):
        prompt = "billing> "
        shellspan_shell_type = "billing-admin"

        def shellspan_component_name(self): return "billing"
        def shellspan_component_version(self): return billing.__version__
        def shellspan_adapters(self): return sorted(self.plugins)
        def shellspan_metadata(self): return {"billing.region": self.region}

With ``cmd.Cmd`` (the mixin first in the bases) nothing else is needed: ``cmdloop`` starts and
ends the session and ``onecmd`` records each command. Shells built on something else call
``shellspan_start()``, ``shellspan_command(text)`` (a context manager) and ``shellspan_end()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shellspan import semconv as sc
from shellspan.otlp import AttrValue
from shellspan.session import Command, Session
from shellspan.signals import install_signal_handlers_for


class InstrumentedShell:
    """Mixin for admin shells; override the ``shellspan_*`` providers to describe the shell."""

    shellspan_shell_type: str | None = None
    """``shell.type`` of the session; default: the component name, else the class name."""
    shellspan_signal_handlers: bool = True
    """End the session on SIGHUP/SIGTERM (only possible from the main thread)."""
    shellspan_catch_exceptions: bool = False
    """Record a command that raises as failed and go on (True) or let the exception end the
    loop as ``cmd.Cmd`` does (False; the session then ends with reason ``crash``)."""

    shellspan_session: Session | None = None
    shellspan_exit_code: int = 0
    _shellspan_reason: str = "exit"
    _shellspan_cmd_code: int | None = None
    _shellspan_cmd_message: str = ""

    # --- metadata providers (override) ---------------------------------------------------------

    def shellspan_component_name(self) -> str | None:
        return None

    def shellspan_component_version(self) -> str | None:
        return None

    def shellspan_adapters(self) -> Sequence[str]:
        """Adapters, plugins or back-ends loaded (``shell.component.adapters``)."""
        return ()

    def shellspan_metadata(self) -> Mapping[str, AttrValue]:
        """Anything else to put on the session (attribute name → value)."""
        return {}

    # --- session control -----------------------------------------------------------------------

    def _shellspan_collect(self) -> dict[str, AttrValue]:
        meta: dict[str, AttrValue] = {}
        name = self.shellspan_component_name()
        version = self.shellspan_component_version()
        adapters = list(self.shellspan_adapters() or ())
        if name:
            meta[sc.COMPONENT_NAME] = str(name)
        if version:
            meta[sc.COMPONENT_VERSION] = str(version)
        if adapters:
            meta[sc.COMPONENT_ADAPTERS] = [str(a) for a in adapters]
        meta.update(self.shellspan_metadata() or {})
        return meta

    def shellspan_start(self, **session_kwargs: Any) -> Session:
        """Start (once) and return the session for this shell."""
        if self.shellspan_session is not None:
            return self.shellspan_session
        try:
            meta = self._shellspan_collect()
        except Exception as exc:  # noqa: BLE001 - a broken provider must not stop the shell
            meta = {sc.METADATA_ERROR: repr(exc)}
        shell_type = (self.shellspan_shell_type or meta.get(sc.COMPONENT_NAME)
                      or type(self).__name__.lower())
        s = Session(str(shell_type), metadata=meta, **session_kwargs).start()
        if self.shellspan_signal_handlers:
            install_signal_handlers_for(s)
        if s.capture is not None and getattr(self, "stdout", None) is s.capture.streams[0]:
            import sys

            self.stdout = sys.stdout  # cmd.Cmd kept the stream from before the recording
        self.shellspan_session = s
        return s

    def shellspan_end(self, reason: str | None = None, exit_code: int | None = None) -> None:
        s = self.shellspan_session
        if s is not None:
            s.end(reason or self._shellspan_reason,
                  self.shellspan_exit_code if exit_code is None else exit_code)

    def shellspan_command(self, text: str, name: str | None = None) -> Command:
        """A command span for shells not built on ``cmd.Cmd``: ``with self.shellspan_command(l):``."""
        return self.shellspan_start().command(text, name)

    def shellspan_fail(self, exit_code: int = 1, message: str = "") -> None:
        """Mark the running command as failed without raising."""
        self._shellspan_cmd_code = exit_code
        self._shellspan_cmd_message = message

    # --- cmd.Cmd integration -------------------------------------------------------------------

    def cmdloop(self, intro: Any = None) -> None:
        self.shellspan_start()
        try:
            super().cmdloop(intro)  # type: ignore[misc]
        except KeyboardInterrupt:
            self.shellspan_end("signal", 130)
            raise
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            self.shellspan_end("exit", code)
            raise
        except BaseException:
            self.shellspan_end("crash", 1)
            raise
        self.shellspan_end()

    def onecmd(self, line: str) -> Any:
        s = self.shellspan_session
        stripped = line.strip()
        if s is None or not stripped:
            return super().onecmd(line)  # type: ignore[misc]
        if stripped == "EOF":
            self._shellspan_reason = "eof"
            return super().onecmd(line)  # type: ignore[misc]
        self._shellspan_cmd_code, self._shellspan_cmd_message = None, ""
        cmd = s.command(stripped)
        s.command_started(cmd, (str(getattr(self, "prompt", "")), ""))
        try:
            stop = super().onecmd(line)  # type: ignore[misc]
        except Exception as exc:
            cmd.finish(1, exc)
            if self.shellspan_catch_exceptions:
                import traceback

                traceback.print_exc()
                return False
            raise
        except BaseException as exc:
            code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
            cmd.finish(code, exc if code else None)
            raise
        code = self._shellspan_cmd_code or 0
        cmd.finish(code, (self._shellspan_cmd_message or "failed") if code else None)
        s.prompt()
        if stop:
            self._shellspan_reason = "exit" if self._shellspan_reason != "eof" else "eof"
        return stop
