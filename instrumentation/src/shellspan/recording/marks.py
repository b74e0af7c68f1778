"""Command boundaries in the terminal stream: the private OSC marks shells write when recorded.

Under ``shellspan record`` (``SHELLSPAN_RECORDER`` set) the bash/zsh hooks and the Python shells
write, to their terminal::

    ESC ] 6973 ; C ; <session id> ; <command span id> BEL    a command starts
    ESC ] 6973 ; P ; <session id> ; <root span id> BEL       the prompt comes back

(ids in lowercase hex). The recorder removes them from the stream, so neither the user's terminal
nor the recording ever shows them, and attributes what follows to that session and span
(``MarkScanner``). A mark may be cut across two reads; the scanner keeps the cut part for the
next one. ``SHELLSPAN_RECORDER_SESSION`` (``<session id>-<root span id>``) names the session the
recorder chose for the shell it starts: the first shell that reads it takes that id (and removes
the variable), so its start-up output already belongs to it.

This module is small and imports only ``os``: the Python shells load it at start when recorded.
"""

from __future__ import annotations

import os

OSC_NUMBER = "6973"
PREFIX = b"\x1b]" + OSC_NUMBER.encode() + b";"
COMMAND, PROMPT = "C", "P"
ENV_RECORDER = "SHELLSPAN_RECORDER"
ENV_SESSION = "SHELLSPAN_RECORDER_SESSION"
MAX_MARK = 96  # longer than any valid mark: a "mark" still open after this many bytes is not one
_HEX = frozenset(b"0123456789abcdef")


def mark(kind: str, session_id: str, span_id: str) -> bytes:
    """The bytes of one mark."""
    return PREFIX + f"{kind};{session_id};{span_id}".encode() + b"\x07"


def write_mark(kind: str, session_id: str, span_id: str) -> None:
    """Write a mark to the terminal (stderr), after what Python still buffers for it, so the
    mark stands between the output before and after it."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        os.write(2, mark(kind, session_id, span_id))
    except OSError:
        pass


def recorded(env: dict[str, str] | None = None) -> bool:
    """Whether this process runs under a recorder that wants marks."""
    return bool((os.environ if env is None else env).get(ENV_RECORDER))


def adopt_session(env=None) -> tuple[bytes, bytes] | None:
    """(trace id, root span id) the recorder chose for this shell, taken out of the
    environment so that shells started from this one do not take it too; None if not set."""
    env = os.environ if env is None else env
    value = env.pop(ENV_SESSION, "")
    sid, _, root = value.partition("-")
    if len(sid) != 32 or len(root) != 16 or not _is_hex(sid) or not _is_hex(root):
        return None
    tid, rid = bytes.fromhex(sid), bytes.fromhex(root)
    return (tid, rid) if any(tid) and any(rid) else None


def _is_hex(text: str) -> bool:
    return all(c in _HEX for c in text.encode())


def parse(body: bytes) -> tuple[str, str, str] | None:
    """(kind, session id, span id) of a mark's body (what follows PREFIX, without BEL)."""
    parts = body.split(b";")
    if len(parts) != 3 or parts[0] not in (b"C", b"P"):
        return None
    kind, sid, span = parts
    if len(sid) != 32 or len(span) != 16 or not set(sid) <= _HEX or not set(span) <= _HEX:
        return None
    if not sid.strip(b"0") or not span.strip(b"0"):
        return None
    return kind.decode(), sid.decode(), span.decode()


class MarkScanner:
    """Splits terminal output into text and marks (recorder side).

    ``feed(data)`` returns the parts of ``data`` in order: ``bytes`` (text to pass on) and
    ``(kind, session id, span id)`` tuples (marks, removed from the text). A tail that may be
    the start of a mark is kept (``pending``) for the next call; ``flush`` gives it back as
    text when no more output comes. The common case (no ESC near the end, no mark) costs two
    searches of the chunk."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list:
        if self.pending:
            data, self.pending = self.pending + data, b""
        parts: list = []
        start = search = 0
        while (i := data.find(PREFIX, search)) >= 0:
            end = self._terminator(data, i + len(PREFIX))
            if end is None:
                if len(data) - i < MAX_MARK:  # cut: the rest comes with the next read
                    if i > start:
                        parts.append(data[start:i])
                    self.pending = data[i:]
                    return parts
                search = i + 1  # never terminated: not a mark, it stays in the text
                continue
            stop, after = end
            if i > start:
                parts.append(data[start:i])
            found = parse(data[i + len(PREFIX):stop])
            if found is not None:  # a malformed one is dropped all the same
                parts.append(found)
            start = search = after
        # A possible beginning of a mark at the very end waits for the next read.
        tail = data.rfind(b"\x1b", max(start, len(data) - len(PREFIX) + 1))
        if tail >= 0 and PREFIX.startswith(data[tail:]):
            if tail > start:
                parts.append(data[start:tail])
            self.pending = data[tail:]
        elif start < len(data):
            parts.append(data[start:] if start else data)
        return parts

    @staticmethod
    def _terminator(data: bytes, body: int) -> tuple[int, int] | None:
        """(end of the mark's body, index after its terminator): BEL or ESC backslash."""
        limit = min(len(data), body + MAX_MARK)
        bel = data.find(b"\x07", body, limit)
        st = data.find(b"\x1b\\", body, limit)
        if bel >= 0 and (st < 0 or bel < st):
            return bel, bel + 1
        if st >= 0:
            return st, st + 2
        return None

    def flush(self) -> bytes:
        """The kept tail, given up as text (no more output is coming soon)."""
        pending, self.pending = self.pending, b""
        return pending
