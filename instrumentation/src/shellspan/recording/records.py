"""The log records of a terminal recording, built in one place (names from ``semconv``).

One record per chunk of terminal I/O, in its session's trace context: trace id = the session,
span id = the command that was running (or the session's root span between commands). Pure
functions from facts to ``LogData``, like ``shellspan.spans`` for spans.
"""

from __future__ import annotations

from shellspan import semconv as sc
from shellspan.otlp import AttrValue, LogData

DROPPED_TEXT = "\r\n[shellspan: {} bytes of output not recorded]\r\n"


def chunk(trace_id: bytes, span_id: bytes, *, seq: int, time_ns: int, event: str, body: str,
          observed_ns: int, redacted: bool = False, term: str | None = None,
          command: str | None = None) -> LogData:
    """One chunk: ``event`` is ``o`` (output), ``i`` (input), ``r`` (a resize: ``body`` is
    ``COLSxROWS``) or ``m`` (a marker). The first record of a recording (seq 1, a resize)
    carries the terminal type and what the recorder ran."""
    attrs: dict[str, AttrValue] = {sc.SESSION_ID: trace_id.hex(), sc.RECORDING_EVENT: event,
                                   sc.RECORDING_SEQ: seq}
    if redacted:
        attrs[sc.RECORDING_REDACTED] = True
    if term is not None:
        attrs[sc.RECORDING_TERM] = term
    if command is not None:
        attrs[sc.RECORDING_COMMAND] = command
    return LogData(trace_id, span_id, time_ns, observed_ns, body, attrs)


def dropped(trace_id: bytes, span_id: bytes, *, seq: int, time_ns: int, observed_ns: int,
            count: int) -> LogData:
    """The visible marker of a drop: ``count`` bytes were not recorded just before it."""
    rec = chunk(trace_id, span_id, seq=seq, time_ns=time_ns, event=sc.RECORDING_OUTPUT,
                body=DROPPED_TEXT.format(count), observed_ns=observed_ns)
    rec.attributes[sc.RECORDING_DROPPED_BYTES] = count
    return rec
