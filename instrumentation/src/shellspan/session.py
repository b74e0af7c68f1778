"""Shell sessions as traces: the public API.

    import shellspan

    with shellspan.Session("myshell", metadata={"shell.component.name": "billing"}) as s:
        with s.command("refund 42"):
            ...

A session is one trace; its id is the trace id (32 lowercase hex digits). ``start`` queues a
short ``shell.session.start`` span (exported at once), heartbeats follow every
``SHELLSPAN_HEARTBEAT_INTERVAL`` seconds, every command is a ``shell.command`` span, and ``end``
exports the root ``shell.session`` span with the exit reason and code, then flushes within the
exit budget (the rest goes to the spool). Nothing here imports the OpenTelemetry SDK or touches
the network on the calling thread: ids and timestamps are made locally and spans are handed to
the export thread.

Shell-state snapshots (``shellspan.snapshot``) are taken by the export thread: at start (on a
heartbeat span), every ``SHELLSPAN_SNAPSHOT_INTERVAL`` seconds while commands run, and at the
end on the root span. Under ``shellspan record`` the shell takes the session id the recorder
chose and marks where commands start and the prompt comes back (``shellspan.recording.marks``);
otherwise, with ``SHELLSPAN_RECORD_OUTPUT=1``, it records what its statements print itself
(``shellspan.recording.pycapture``).
"""

from __future__ import annotations

import _thread
import atexit
import os
import time
from collections.abc import Mapping

from shellspan import semconv as sc
from shellspan import spans
from shellspan.config import Config
from shellspan.otlp import (
    AttrValue,
    Link,
    SpanData,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    traceparent,
)

TYPE_CHECKING = False  # avoid importing typing on the start-up path
if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType

    from shellspan.signals import SignalWatch


def _user_name() -> str:
    from shellspan.auth import login_name  # small, stdlib-only module

    return login_name()


def _tty() -> str:
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.ttyname(fd)
        except OSError:
            continue
    return ""


def _client_address(env: Mapping[str, str]) -> str:
    for var in ("SSH_CONNECTION", "SSH_CLIENT"):
        val = env.get(var, "").split()
        if val:
            return val[0]
    return ""


def _stderr_tty() -> bool:
    try:
        return os.isatty(2)
    except OSError:
        return False


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def command_name(text: str) -> str:
    """The first word of a command: a statement keyword, a callee (``df.head``) or a program."""
    s = text.lstrip()
    i = 0
    while i < len(s) and (s[i].isalnum() or s[i] in "_.-/%!"):
        i += 1
    return s[:i] or s[:1]


class Command:
    """One running command; use as a context manager or call ``finish`` yourself."""

    def __init__(self, session: Session, text: str, name: str | None = None,
                 cwd: str | None = None) -> None:
        self.session = session
        self.seq = session._next_seq()
        self.span_id = new_span_id()
        self.text, self.redacted = session.redact(text)
        self.name = name if name is not None else command_name(self.text)
        self.cwd = cwd if cwd is not None else session.cwd
        self.start_ns = time.time_ns()
        self.end_ns = 0  # set for a command that already ran (``Session.record_command``)
        self.attributes: dict[str, AttrValue] = {}
        self.finished = False
        session._running.append(self)
        session._set_env_parent(self.span_id)
        if session._signal_watch is not None:
            session._signal_watch.rearm()

    def set_attribute(self, key: str, value: AttrValue) -> None:
        self.attributes[key] = value

    def finish(self, exit_code: int | None = 0, error: BaseException | str | None = None) -> None:
        """End the command; ``exit_code`` None when how it ended is unknown (cut short)."""
        if self.finished:
            return
        self.finished = True
        s = self.session
        try:
            s._running.remove(self)
        except ValueError:
            pass
        end_ns = time.time_ns()
        s.cwd = _cwd()
        error_type, message = "", ""
        if isinstance(error, str):
            message = error
        elif error is not None:
            error_type = message = type(error).__name__
        if spans.command_failed(exit_code, error_type, message):
            s.failed_count += 1
        s._emit(spans.command_span(
            s.trace_id, s.root_span_id, self.span_id, seq=self.seq, text=self.text,
            name=self.name, cwd=self.cwd, start_ns=self.start_ns, end_ns=self.end_ns or end_ns,
            exit_code=exit_code, redacted=self.redacted, error_type=error_type, message=message,
            extra=self.attributes))
        s._set_env_parent(s.root_span_id)
        if s._signal_watch is not None:
            s._signal_watch.rearm()

    def __enter__(self) -> Command:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if ev is None or isinstance(ev, (SystemExit, GeneratorExit)) and not ev.args:
            self.finish(0)
        elif isinstance(ev, SystemExit):
            code = ev.code if isinstance(ev.code, int) else 1
            self.finish(code, None if code == 0 else ev)
        else:
            self.finish(1, ev)


class Session:
    """One interactive shell session, recorded as one trace."""

    def __init__(self, shell_type: str = "python", *, metadata: Mapping[str, AttrValue] | None = None,
                 config: Config | None = None, exporter=None, redactor=None,
                 propagate_env: bool = True) -> None:
        self.config = config or Config()
        self.shell_type = shell_type
        self.trace_id = new_trace_id()
        self.root_span_id = new_span_id()
        self._marks = False  # under shellspan record: write the command marks
        if os.environ.get("SHELLSPAN_RECORDER"):
            from shellspan.recording import marks

            adopted = marks.adopt_session()
            if adopted is not None:
                self.trace_id, self.root_span_id = adopted
            self._marks = _stderr_tty()
        self.capture = None  # the output recording (shellspan.recording.pycapture)
        self._start_env: dict[str, str] | None = None  # for the snapshots' environment diff
        self._snapshot_count = -1  # commands at the last snapshot
        self._last_snapshot = None
        self.session_id = self.trace_id.hex()
        self.start_ns = 0
        self.end_ns = 0
        self.cwd = _cwd()
        self.command_count = 0
        self.failed_count = 0
        self.exit_reason: str | None = None
        self.exit_code: int | None = None
        self.propagate_env = propagate_env
        self._redactor = redactor
        self._exporter = exporter
        self._started = False
        self._ended = False
        self._end_lock = _thread.allocate_lock()  # held for good by whoever ends the session
        self._end_owner = 0  # the thread ident running end(), while it runs
        self._end_done = False  # end() has returned (the root span is flushed or spooled)
        self._awaiting_ready = False
        self._signal_watch: SignalWatch | None = None  # set by shellspan.signals
        self._links: list[Link] = []
        self._running: list[Command] = []  # commands started and not finished
        env = os.environ
        self.attributes: dict[str, AttrValue] = spans.identity(
            session_id=self.session_id, shell_type=shell_type, user=_user_name(),
            host=os.uname().nodename, pid=os.getpid(), parent_pid=os.getppid(), tty=_tty(),
            client_address=_client_address(env), cwd=self.cwd)
        if metadata:
            self.attributes.update({k: v for k, v in metadata.items() if v is not None})
        parent = parse_traceparent(env.get("TRACEPARENT", ""))
        if parent:  # started from an instrumented process: link to it, keep our own trace
            spans.parent_link(self.attributes, self._links, parent[0], parent[1],
                              env.get("TRACESTATE", ""))
        self._inherited_tracestate = env.get("TRACESTATE", "")
        self._inherited_baggage = env.get("BAGGAGE", "")

    # --- helpers -----------------------------------------------------------------------------

    @property
    def disabled(self) -> bool:
        return self.config.disabled

    @property
    def exporter(self):
        if self._exporter is None and not self.disabled:
            from shellspan.export import get_exporter

            self._exporter = get_exporter(self.config)
        return self._exporter

    def redact(self, text: str) -> tuple[str, bool]:
        if self._redactor is None:
            from shellspan.redact import default_redactor

            self._redactor = default_redactor()
        return self._redactor.redact(text)

    def _next_seq(self) -> int:
        self.command_count += 1
        return self.command_count

    def _emit(self, span: SpanData) -> None:
        if not self.disabled:
            self.exporter.submit(span)

    def _set_env_parent(self, span_id: bytes) -> None:
        if not self.propagate_env or self.disabled:
            return
        env = os.environ
        env["TRACEPARENT"] = traceparent(self.trace_id, span_id)
        state = f"shellspan={self.command_count}"
        others = [e for e in self._inherited_tracestate.split(",")
                  if e.strip() and not e.strip().startswith("shellspan=")]
        env["TRACESTATE"] = ",".join([state, *others[:31]])
        bag = [e for e in self._inherited_baggage.split(",")
               if e.strip() and not e.strip().startswith(sc.BAGGAGE_SESSION_ID + "=")]
        env["BAGGAGE"] = ",".join([f"{sc.BAGGAGE_SESSION_ID}={self.session_id}", *bag])

    def set_attribute(self, key: str, value: AttrValue) -> None:
        """Add session metadata (goes on the root span; before ``start`` also on the start span)."""
        self.attributes[key] = value

    @property
    def traceparent(self) -> str:
        return traceparent(self.trace_id, self.root_span_id)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, defer_export: bool = False) -> Session:
        """Begin the session. With ``defer_export`` the export thread starts at ``ready()``."""
        if self._started:
            return self
        self._started = True
        self.start_ns = time.time_ns()
        if self.disabled:
            return self
        self._awaiting_ready = defer_export
        exp = self.exporter
        # Durable at once: a process killed right after this (kill -9, the OOM killer) still
        # leaves its session in the record, sent by the next process that drains the spool.
        exp.submit_durable(spans.start_span(self.trace_id, self.root_span_id, self.attributes,
                                            self.start_ns, time.time_ns()))
        exp.add_periodic(self.config.heartbeat_s, self._heartbeat)
        if self.config.snapshots:
            self._start_env = dict(os.environ)
            exp.add_periodic(self.config.snapshot_s, self._snapshot_heartbeat, first_in=0.0)
        exp.start(wait_for_ready=defer_export)
        if self.config.record_output and not self._marks:
            from shellspan.recording.pycapture import OutputCapture

            self.capture = OutputCapture(self)
            self.capture.start(wait_for_ready=defer_export)
        self._set_env_parent(self.root_span_id)
        atexit.register(self._atexit)
        global _current
        _current = self
        return self

    def ready(self) -> None:
        """The shell is interactive (first prompt): the export thread may start its work."""
        self._awaiting_ready = False
        if not self.disabled and self._exporter is not None:
            self._exporter.ready()
        if self.capture is not None:
            self.capture.exporter.ready()
        if self._signal_watch is not None:
            self._signal_watch.start()

    def _heartbeat(self) -> SpanData | None:
        if self._ended or not self._started:
            return None
        return spans.heartbeat_span(self.trace_id, self.root_span_id, shell_type=self.shell_type,
                                    cwd=self.cwd, command_count=self.command_count,
                                    now_ns=time.time_ns())

    def _snapshot(self, kind: str, *, run_git_status: bool = True):
        from shellspan.snapshot import of_this_process

        snap = of_this_process(self._start_env or {}, self.redact,
                               run_git_status=run_git_status, git_cache=self._last_snapshot)
        self._last_snapshot, self._snapshot_count = snap, self.command_count
        return spans.snapshot_event(kind, time.time_ns(), snap)

    def _snapshot_heartbeat(self) -> SpanData | None:
        """A heartbeat with the shell's state (export thread): at once after start, then when
        commands ran since the last one."""
        if self._ended or not self._started:
            return None
        first = self._last_snapshot is None
        if not first and self.command_count == self._snapshot_count:
            return None
        event = self._snapshot("start" if first else "heartbeat")
        return spans.heartbeat_span(self.trace_id, self.root_span_id, shell_type=self.shell_type,
                                    cwd=self.cwd, command_count=self.command_count,
                                    now_ns=time.time_ns(), events=[event])

    def current_span_id(self) -> bytes:
        """The span output belongs to now: the command running, else the session's root."""
        running = self._running
        return running[-1].span_id if running else self.root_span_id

    def command_started(self, cmd: Command, prompts: tuple[str, str] = ("", "")) -> None:
        """A shell's command begins to run: under ``shellspan record`` the recorder is told
        (a mark); when the shell records its output itself, the statement as the terminal
        showed it (``prompts``: the first line's and the continuation lines', before the
        command's already redacted text) goes into the recording. Nothing is built otherwise."""
        if self._marks:
            from shellspan.recording.marks import COMMAND, write_mark

            write_mark(COMMAND, self.session_id, cmd.span_id.hex())
        elif self.capture is not None:
            first, *rest = cmd.text.split("\n")
            ps1, ps2 = prompts
            self.capture.echo("\n".join([ps1 + first, *(ps2 + line for line in rest)]))

    def prompt(self) -> None:
        """The shell is about to prompt for the next command (a mark for the recorder)."""
        if self._marks:
            from shellspan.recording.marks import PROMPT, write_mark

            write_mark(PROMPT, self.session_id, self.root_span_id.hex())

    def command(self, text: str, name: str | None = None, cwd: str | None = None) -> Command:
        """Start a command span; finish it with ``finish()`` or use it as a context manager."""
        return Command(self, text, name, cwd)

    def record_command(self, text: str, *, start_ns: int, end_ns: int | None = None,
                       exit_code: int = 0, name: str | None = None, cwd: str | None = None,
                       error: BaseException | str | None = None) -> None:
        """Record a command that already ran (for shells that only learn of it afterwards)."""
        cmd = Command(self, text, name, cwd)
        cmd.start_ns = start_ns
        cmd.end_ns = end_ns or 0
        cmd.finish(exit_code, error)

    def end(self, reason: str = "exit", exit_code: int = 0, *,
            budget_s: float | None = None) -> None:
        """Export the root span with the exit reason and code; flush within the exit budget.

        Only the first call does anything, whichever thread makes it (a signal's session end
        runs on a helper thread)."""
        if self._ended or not self._started or not self._end_lock.acquire(False):
            return
        self._end_owner = _thread.get_ident()
        try:
            self._end(reason, exit_code, budget_s)
        finally:
            self._end_owner = 0
            self._end_done = True

    def _end(self, reason: str, exit_code: int, budget_s: float | None) -> None:
        self._ended = True
        self.exit_reason, self.exit_code = reason, int(exit_code)
        self.end_ns = time.time_ns()
        if self.disabled:
            return
        for cmd in list(self._running):  # cut short by the end: how it ended is not known
            cmd.finish(None, f"cut short: the session ended ({reason})")
        exp = self._exporter
        events = None
        if self._start_env is not None and exp is not None and exp.set_up:
            try:  # what the export thread already loaded; no git process on the way out
                events = [self._snapshot("end", run_git_status=False)]
            except Exception:  # noqa: BLE001 - a snapshot must never stop the exit
                events = None
        self._emit(spans.session_span(
            self.trace_id, self.root_span_id, self.attributes, start_ns=self.start_ns,
            end_ns=self.end_ns, reason=reason, exit_code=exit_code,
            command_count=self.command_count, failed_count=self.failed_count,
            last_cwd=self.cwd, links=self._links, events=events))
        if exp is not None:
            exp.clear_periodic()
            exp.flush(budget_s)
        if self.capture is not None:  # the recording after the spans (its own budget)
            self.capture.stop(budget_s)
        global _current
        if _current is self:
            _current = None

    def _atexit(self) -> None:
        self.end("exit", 0)

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if ev is None:
            self.end("exit", 0)
        elif isinstance(ev, SystemExit):
            self.end("exit", ev.code if isinstance(ev.code, int) else (0 if ev.code is None else 1))
        elif isinstance(ev, EOFError):
            self.end("eof", 0)
        elif isinstance(ev, KeyboardInterrupt):
            self.end("signal", 130)
        else:
            self.end("crash", 1)

    def otel_context(self):
        """An OpenTelemetry Context whose current span is this session's root span, so that
        an application's own tracer can create spans inside the session (imports the API)."""
        from opentelemetry import trace

        ctx = trace.SpanContext(int.from_bytes(self.trace_id, "big"),
                                int.from_bytes(self.root_span_id, "big"), is_remote=True,
                                trace_flags=trace.TraceFlags(1))
        return trace.set_span_in_context(trace.NonRecordingSpan(ctx))


_current: Session | None = None


def current_session() -> Session | None:
    """The session started last in this process and not yet ended."""
    return _current


def start_session(shell_type: str = "python", *, metadata: Mapping[str, AttrValue] | None = None,
                  install_signal_handlers: bool = False, defer_export: bool = False,
                  **kwargs) -> Session:
    """Create and start a session (optionally with SIGHUP/SIGTERM handlers that end it)."""
    s = Session(shell_type, metadata=metadata, **kwargs).start(defer_export=defer_export)
    if install_signal_handlers:
        from shellspan.signals import install_signal_handlers_for

        install_signal_handlers_for(s)
    return s


def end_session(reason: str = "exit", exit_code: int = 0) -> None:
    """End the current session, if any."""
    if _current is not None:
        _current.end(reason, exit_code)


def flush(budget_s: float | None = None) -> bool:
    """Flush the process's exporter within ``budget_s`` (spooling the rest)."""
    from shellspan import export

    return export.flush(budget_s)


__all__ = ["Command", "Session", "current_session", "start_session", "end_session", "flush",
           "command_name"]
