"""asciicast v2, the file format of terminal recordings that asciinema and its player read.

One JSON header line, then one ``[time, code, data]`` line per event: ``o`` output, ``i`` input,
``r`` resize (``"COLSxROWS"``), ``m`` marker (a label players can jump to). Times are seconds since
the start of the recording and never go backwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "application/x-asciicast"
MAX_LABEL_CHARS = 300


def header(width: int, height: int, timestamp: int, *, term: str = "", shell: str = "",
           title: str = "", idle_time_limit: float | None = None) -> str:
    head: dict[str, Any] = {"version": 2, "width": width, "height": height,
                            "timestamp": timestamp}
    if idle_time_limit:
        head["idle_time_limit"] = idle_time_limit
    env = {k: v for k, v in (("TERM", term), ("SHELL", shell)) if v}
    if env:
        head["env"] = env
    if title:
        head["title"] = title
    return json.dumps(head, ensure_ascii=False) + "\n"


def event(t: float, code: str, data: str) -> str:
    return json.dumps([round(t, 6), code, data], ensure_ascii=False) + "\n"


@dataclass
class CommandMark:
    """Where a command starts in the recording: its first record (``anchor_seq``) when it
    printed anything, else the first record after its start time."""

    seq: int
    span_id: str
    start_ns: int
    end_ns: int
    command: str
    exit_code: int | None = None
    anchor_seq: int | None = None

    @property
    def label(self) -> str:
        text = " ".join(self.command.split())
        if len(text) > MAX_LABEL_CHARS:
            text = text[:MAX_LABEL_CHARS - 1] + "…"
        return f"#{self.seq} {text}"

    def starts_before(self, seq: int, time_ns: int) -> bool:
        """Whether the record (`seq`, `time_ns`) comes at or after this command's start."""
        if self.anchor_seq is not None:
            return self.anchor_seq <= seq
        return self.start_ns <= time_ns


class Timeline:
    """Turns stored records, in seq order, into asciicast event lines with a marker at the start
    of every command."""

    def __init__(self, t0_ns: int, marks: list[CommandMark]) -> None:
        self.t0_ns = t0_ns
        self.pending = list(marks)
        self.last_t = 0.0

    def _t(self, time_ns: int) -> float:
        self.last_t = max(self.last_t, (time_ns - self.t0_ns) / 1e9)
        return self.last_t

    def record(self, seq: int, time_ns: int, code: str, data: str) -> list[str]:
        lines = []
        while self.pending and self.pending[0].starts_before(seq, time_ns):
            mark = self.pending.pop(0)
            lines.append(event(self._t(min(mark.start_ns, time_ns)), "m", mark.label))
        lines.append(event(self._t(time_ns), code, data))
        return lines

    def finish(self) -> list[str]:
        """Markers of the commands after the last record (they printed nothing)."""
        lines = [event(self._t(mark.start_ns), "m", mark.label) for mark in self.pending]
        self.pending = []
        return lines
