"""The records the bash/zsh hooks write to the agent, parsed into typed values.

This module and the hook scripts are the only places that know the format. Each shell appends
its records to a journal file of its own (``journal``). A record is a kind letter and fields
separated by ``\\x1f`` (US), terminated by NUL; free text is always the last field, so it may
contain the separator. Times are microseconds since the epoch, or seconds with a fraction
(``$EPOCHREALTIME`` as the shell prints it: ``.`` or ``,``); ids are hex.

====  ====================================================================================
S     pid sid start shell root_span ppid shlvl parent_traceparent user ssh version
      ancestors cwd                                           (a shell started)
B     pid sid seq span start cwd flags breaks text            (a command starts)
E     pid sid seq end status pipestatus                       (the command that began ends)
C     pid sid seq span start end status pipestatus cwd flags breaks text
                       (bash: a command seen only when it had ended, both in one record)
X     pid sid time status how                                 (exit hook: exit, eof, hangup,
                                                               signal: see ``Exit``)
====  ====================================================================================

``flags`` of B and C: ``s`` typed with a leading space, which the shell's settings keep out of
its history (the text is empty when ``SHELLSPAN_HIDDEN_COMMANDS=redact``), ``u`` the line could
not be read from bash's history (history turned off with ``set +o history``, or a later line
of a paste that the user's settings kept out): the text is ``$BASH_COMMAND``, the first
command bash runs; ``h`` the text is bash's ``history 1`` output as it is (number column and
final newline included: the shell passes it on unparsed). ``breaks`` (bash):
where the lines of a multi-line command end in ``text``, which bash's history joins: ``LEN``
or ``LENb`` (the line ended with a backslash) per line but the last, lengths of the text so far
(see ``join_lines``). ``ancestors`` of S, when the shell had no TRACEPARENT: the processes
above it on its terminal, nearest first, as ``pid`` or ``pid=traceparent`` (the TRACEPARENT
that process was started with). Every record carries the session id, so an agent started
later can adopt a session it never saw start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

SEP = "\x1f"
END = b"\0"

FLAG_UNKNOWN = "u"
FLAG_HIDDEN = "s"
FLAG_HISTORY = "h"

_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_BREAK = re.compile(r"(\d+)(b?)")
_TIME = re.compile(r"(\d+)(?:[.,](\d*))?")
_HISTORY_NUMBER = re.compile(r"\s*\d+[ *] ")


class RecordError(ValueError):
    """A record that cannot be parsed (it is dropped; the agent logs why)."""


class Start(NamedTuple):
    """S: a shell started (its hooks were sourced)."""

    pid: int
    session_id: str
    start_us: int | None
    shell: str
    root_span: bytes | None
    ppid: int | None
    shlvl: int | None
    parent_traceparent: str
    user: str
    ssh: str
    version: str
    ancestors: tuple[tuple[int, str], ...]
    cwd: str


class Begin(NamedTuple):
    """B: a command starts (bash: its first DEBUG trap; zsh: preexec)."""

    pid: int
    session_id: str
    seq: int | None
    span: bytes | None
    start_us: int | None
    cwd: str
    flags: str
    breaks: str
    text: str


class Command(NamedTuple):
    """C: a command that had already ended when the shell saw it (bash: a line that ran no
    DEBUG trap, such as ``( subshell )`` or a function definition)."""

    pid: int
    session_id: str
    seq: int | None
    span: bytes | None
    start_us: int | None
    end_us: int | None
    status: int | None
    pipestatus: tuple[int, ...]
    cwd: str
    flags: str
    breaks: str
    text: str


class End(NamedTuple):
    """E: the command that began with the same ``seq`` ended (the prompt came back)."""

    pid: int
    session_id: str
    seq: int | None
    end_us: int | None
    status: int | None
    pipestatus: tuple[int, ...]


class Exit(NamedTuple):
    """X: the shell is exiting (its exit hook). ``how`` is what the hook could tell: ``exit``
    (the exit builtin ran), ``eof`` (at the prompt), ``hangup`` (the terminal is gone),
    ``signal`` (another command was running, so a signal ended the shell)."""

    pid: int
    session_id: str
    time_us: int | None
    status: int | None
    how: str


Record = Start | Command | Begin | End | Exit


# --- field converters --------------------------------------------------------------------------

def _pid(s: str) -> int:
    try:
        pid = int(s)
    except ValueError:
        raise RecordError(f"bad pid {s!r}") from None
    if pid <= 0:
        raise RecordError(f"bad pid {s!r}")
    return pid


def _sid(s: str) -> str:
    if not _SESSION_ID.fullmatch(s):
        raise RecordError(f"bad session id {s!r}")
    return s


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def _time(s: str) -> int | None:
    """Microseconds (``123``) or seconds with a fraction (``1.5``, ``1,5``) → microseconds;
    0 or empty means "not known"."""
    m = _TIME.fullmatch(s)
    if m is None:
        return None
    whole, fraction = m.groups()
    if fraction is None:
        return int(whole) or None
    return int(whole) * 1_000_000 + int((fraction + "000000")[:6]) or None


def _span(s: str) -> bytes | None:
    if len(s) != 16:
        return None
    try:
        return bytes.fromhex(s)
    except ValueError:
        return None


def _pipes(s: str) -> tuple[int, ...]:
    return tuple(int(p) for p in s.split() if p.lstrip("-").isdigit())


def _text(s: str) -> str:
    return s


def _ancestors(s: str) -> tuple[tuple[int, str], ...]:
    out = []
    for word in s.split():
        pid, _, traceparent = word.partition("=")
        if pid.isdigit():
            out.append((int(pid), traceparent))
    return tuple(out)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return " ".join(f"{v[0]}={v[1]}" if isinstance(v, tuple) and v[1] else
                        str(v[0]) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


_GRAMMAR: dict[str, tuple[type, tuple[Callable[[str], object], ...]]] = {
    "S": (Start, (_pid, _sid, _time, _text, _span, _int, _int, _text, _text, _text, _text,
                  _ancestors, _text)),
    "B": (Begin, (_pid, _sid, _int, _span, _time, _text, _text, _text, _text)),
    "C": (Command, (_pid, _sid, _int, _span, _time, _time, _int, _pipes, _text, _text, _text,
                    _text)),
    "E": (End, (_pid, _sid, _int, _time, _int, _pipes)),
    "X": (Exit, (_pid, _sid, _time, _int, _text)),
}
_KIND = {cls: kind for kind, (cls, _) in _GRAMMAR.items()}


def parse(record: str) -> Record:
    """One whole record (without its NUL) → its typed value; RecordError if malformed."""
    kind = record[:1]
    grammar = _GRAMMAR.get(kind)
    if grammar is None:
        raise RecordError(f"unknown record kind {kind!r}")
    cls, converters = grammar
    fields = record.split(SEP, len(converters))
    if len(fields) != len(converters) + 1:
        raise RecordError(f"{kind} record with {len(fields) - 1} fields, "
                          f"expected {len(converters)}")
    record = cls(*(conv(value) for conv, value in zip(converters, fields[1:])))
    if isinstance(record, (Begin, Command)) and FLAG_HISTORY in record.flags:
        record = _from_history(record)
    return record


def _from_history(record: Begin | Command) -> Begin | Command:
    """A text that is ``history 1`` output: the entry, without number column and newline."""
    text = record.text
    m = _HISTORY_NUMBER.match(text)
    if m is not None:
        text = text[m.end():]
    if text.endswith("\n"):
        text = text[:-1]
    return record._replace(text=text, flags=record.flags.replace(FLAG_HISTORY, ""))


def encode(record: Record) -> bytes:
    """The wire form of a record, as the hooks write it (for tests and tools)."""
    fields = [_KIND[type(record)], *(_fmt(v) for v in record)]
    return SEP.join(fields).encode() + END


def join_lines(text: str, breaks: str) -> str:
    """The command as typed, from bash's history entry and the notes its PS2 took.

    bash joins the lines of a multi-line command in its history: with ``; `` or a space
    after most lines, a newline inside quotes and here-documents, and nothing after a line
    that ended with a backslash (whose backslash it removes). Before each continuation line
    the hooks noted the length of the entry so far (``LEN``, ``LENb`` if it ended with a
    backslash); the line breaks go back where those lengths say, the delimiter bash added
    there taken out. A delimiter can only be told from the line's own leading blanks by
    convention (``; `` and one space are bash's), so indentation survives whole."""
    cuts = []
    for m in _BREAK.finditer(breaks):
        n, backslash = int(m.group(1)), bool(m.group(2))
        if backslash:
            n -= 1  # the backslash bash removed stood here
        if 0 <= n <= len(text) and (not cuts or n >= cuts[-1][0]):
            cuts.append((n, backslash))
    out = []
    pos = 0
    for n, backslash in cuts:
        if n < pos:
            continue
        if backslash and text.startswith("\\", n):
            continue  # inside quotes bash keeps the backslash and adds a newline itself
        out.append(text[pos:n])
        if backslash:
            out.append("\\\n")
            pos = n
        elif n > 0 and text[n - 1] == "\n":  # a here-document line kept its own newline
            pos = n
        elif text.startswith("; ", n):
            out.append("\n")
            pos = n + 2
        elif text.startswith(("\n", " ", ";"), n):
            out.append("\n")
            pos = n + 1
        else:
            out.append("\n")
            pos = n
    out.append(text[pos:])
    return "".join(out).rstrip("\n")  # a here-document's last line keeps its newline


def split(data: bytes, on_error: Callable[[bytes, str], None] | None = None
          ) -> tuple[list[Record], int]:
    """The whole records at the start of ``data`` and how many bytes they took (an unfinished
    record at the end is left for later). A malformed record is dropped (``on_error``)."""
    out: list[Record] = []
    start = 0
    while (i := data.find(END, start)) >= 0:
        raw = data[start:i]
        start = i + 1
        try:
            out.append(parse(raw.decode("utf-8", "replace")))
        except RecordError as exc:
            if on_error is not None:
                on_error(raw, str(exc))
    return out, start
