"""shellspan: record every interactive shell session as an OpenTelemetry trace.

Public API (cheap to import: no OpenTelemetry SDK, no network; names load on first use)::

    import shellspan
    s = shellspan.start_session("python")
    with s.command("print(1)"):
        ...
    s.end("exit", 0)

See ``shellspan.session`` for sessions, ``shellspan.admin`` for custom admin shells,
``shellspan.repl`` and ``shellspan.ipython_ext`` for Python shells.
"""

from __future__ import annotations

__version__ = "0.1.0"

_SESSION_NAMES = ("Command", "Session", "current_session", "end_session", "flush",
                  "start_session")

__all__ = ["Command", "InstrumentedShell", "Session", "current_session", "end_session", "flush",
           "install_signal_handlers_for", "start_session", "__version__"]

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ~10 ms at start-up
if TYPE_CHECKING:  # pragma: no cover
    from shellspan.admin import InstrumentedShell
    from shellspan.session import (
        Command,
        Session,
        current_session,
        end_session,
        flush,
        start_session,
    )
    from shellspan.signals import install_signal_handlers_for


def __getattr__(name: str):
    if name in _SESSION_NAMES:
        import shellspan.session

        return getattr(shellspan.session, name)
    if name == "install_signal_handlers_for":
        from shellspan.signals import install_signal_handlers_for

        return install_signal_handlers_for
    if name == "InstrumentedShell":
        from shellspan.admin import InstrumentedShell

        return InstrumentedShell
    raise AttributeError(f"module 'shellspan' has no attribute {name!r}")
