"""What a Python shell's statements print, recorded without a pseudo-terminal recorder.

With ``SHELLSPAN_RECORD_OUTPUT=1`` (off by default; ignored under ``shellspan record``, which
records the whole terminal) the Python REPL, IPython and admin shells replace ``sys.stdout`` and
``sys.stderr`` with tees: every Python-level write still goes to the terminal, and is appended,
with its time and the span of the command running, to a list. That is all the shell's thread
does. The logs exporter's thread (``shellspan.export``, signal ``LOGS``) turns the list into
recording records every quarter of a second: the prompt and statement as typed (redacted like
the command), then what it printed, newlines as the terminal shows them (``\\r\\n``), redacted
line by line (``textredact``), within the recording limits (``limits``; ``delay`` cannot slow a
shell down from another thread and drops instead). Writes that bypass ``sys.stdout`` (a child
process such as ``os.system("ls")``, C extensions writing to the file descriptor) are not seen:
``shellspan record`` sees everything.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from shellspan import semconv as sc
from shellspan.export import LOGS, Exporter
from shellspan.otlp import LogData
from shellspan.recording import records
from shellspan.recording.limits import DROP, Budget, Limits

DRAIN_S = 0.25
JOIN_NS = 10_000_000
PENDING_MAX = 8 * 1024 * 1024  # characters waiting for the export thread (beyond: dropped)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from shellspan.session import Session


class _Tee:
    """A text stream that writes through to ``inner`` and keeps a copy in ``capture``."""

    def __init__(self, inner, capture: OutputCapture) -> None:
        self._inner = inner
        self._capture = capture

    def write(self, s: str) -> int:
        n = self._inner.write(s)
        if s:
            self._capture.append(s)
        return n

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class OutputCapture:
    """The output recording of one Python shell session."""

    def __init__(self, session: Session, limits: Limits | None = None) -> None:
        self.session = session
        self.exporter = Exporter(session.config, LOGS)
        self.budget = Budget(limits or Limits.from_env(os.environ))
        self.pending: list[tuple[int, bytes, str]] = []  # (time, span id, text)
        self.pending_chars = 0
        self.dropped = 0
        self.seq = 0
        self.redactor = None
        self.stream = None
        self._ready: list[LogData] = []  # records made on the shell's thread (the first one)
        self._lock = threading.Lock()
        self.streams: tuple = ()  # sys.stdout and sys.stderr before the tees

    # --- the shell's thread --------------------------------------------------------------------

    def start(self, *, wait_for_ready: bool = False) -> None:
        self.streams = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, self)
        sys.stderr = _Tee(sys.stderr, self)
        size = _terminal_size()
        self._add_record(records.chunk(
            self.session.trace_id, self.session.root_span_id, seq=self._next_seq(),
            time_ns=self.session.start_ns or time.time_ns(), event=sc.RECORDING_RESIZE,
            body=size, observed_ns=time.time_ns(), term=os.environ.get("TERM", ""),
            command=self.session.shell_type))
        self.exporter.add_periodic(DRAIN_S, self.drain)
        self.exporter.start(wait_for_ready=wait_for_ready)

    def append(self, text: str, span_id: bytes | None = None) -> None:
        """Keep a copy of what was written (cheap: a list append under a lock)."""
        if span_id is None:
            span_id = self.session.current_span_id()
        with self._lock:
            if self.pending_chars > PENDING_MAX:
                self.dropped += len(text)
                return
            self.pending.append((time.time_ns(), span_id, text))
            self.pending_chars += len(text)

    def echo(self, text: str) -> None:
        """The prompt and the statement as the user typed them (the terminal echoed them; no
        Python write did): redacted like the command, between commands (the root span)."""
        self.append(text.replace("\n", "\r\n") + "\r\n", self.session.root_span_id)

    def stop(self, budget_s: float | None = None) -> None:
        """The session ends: give the streams back, send what is left within the budget."""
        out, err = self.streams or (None, None)
        if isinstance(sys.stdout, _Tee) and sys.stdout._capture is self:
            sys.stdout = out
        if isinstance(sys.stderr, _Tee) and sys.stderr._capture is self:
            sys.stderr = err
        self.exporter.clear_periodic()
        if self.exporter.set_up:  # otherwise the redaction patterns are not loaded yet
            self.exporter.submit_many(self.drain(final=True))
        self.exporter.flush(budget_s)

    # --- the export thread ---------------------------------------------------------------------

    def drain(self, final: bool = False) -> list[LogData]:
        """Records for what was written since the last call (the export thread)."""
        with self._lock:
            pending, self.pending, self.pending_chars = self.pending, [], 0
            dropped, self.dropped = self.dropped, 0
        out, self._ready = self._ready, []
        if self.stream is None:
            from shellspan.recording.textredact import StreamRedactor
            from shellspan.redact import default_redactor

            self.stream = StreamRedactor(default_redactor())
        now = time.monotonic()
        for time_ns, span_id, text in _joined(pending):
            text = _terminal_newlines(text)
            if self.budget.take(len(text)) == DROP:
                dropped += len(text)
                continue
            if dropped:
                out.append(records.dropped(self.session.trace_id, span_id, seq=self._next_seq(),
                                           time_ns=time_ns, observed_ns=time.time_ns(),
                                           count=dropped))
                dropped = 0
            out += self._released(self.stream.add(text, (time_ns, span_id), now))
        if final or self.stream.age(now) >= 2.0:
            out += self._released(self.stream.release())
        if dropped:
            with self._lock:
                self.dropped += dropped
        return out

    def _released(self, released) -> list[LogData]:
        now = time.time_ns()
        return [records.chunk(self.session.trace_id, span_id, seq=self._next_seq(),
                              time_ns=time_ns, event=sc.RECORDING_OUTPUT, body=text,
                              observed_ns=now, redacted=redacted)
                for (time_ns, span_id), text, redacted in released]

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _add_record(self, rec: LogData) -> None:
        self._ready.append(rec)


def _joined(pending: list[tuple[int, bytes, str]]) -> list[tuple[int, bytes, str]]:
    """Writes of the same command within ``JOIN_NS`` of each other as one chunk (``print``
    writes its text and its newline apart)."""
    out: list[tuple[int, bytes, str]] = []
    for time_ns, span_id, text in pending:
        if out and out[-1][1] == span_id and time_ns - out[-1][0] < JOIN_NS:
            out[-1] = (out[-1][0], span_id, out[-1][2] + text)
        else:
            out.append((time_ns, span_id, text))
    return out


def _terminal_newlines(text: str) -> str:
    """A terminal shows ``\\n`` as ``\\r\\n`` (its ``onlcr`` setting): record what it showed."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n") if "\n" in text else text


def _terminal_size() -> str:
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            size = os.get_terminal_size(stream.fileno())
            return f"{size.columns}x{size.lines}"
        except (OSError, AttributeError, ValueError):
            continue
    return "80x24"
