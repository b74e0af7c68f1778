"""The local channel from a recorder to the per-user agent: a Unix stream socket in the runtime
directory (``rec.sock``, 0600 in the 0700 directory; the agent serves only its own uid, checked
with ``SO_PEERCRED``) carrying length-framed messages.

Every message is ``type`` (1 byte), ``length`` (4 bytes, little-endian) and ``length`` bytes:

=====  =================================================================================
``H``  hello (JSON): recorder pid, child pid, command, TERM, tty, start time, --input; sent
       first on every connection
``S``  a session of the recording: index (2 bytes), trace id (16), root span id (8), named (1:
       a shell's mark named it); sent when the recorder first sees it, when a mark first names
       it, and again for every known one after a reconnection
``o``  output; ``i`` input; ``r`` resize ("COLSxROWS"); ``d`` dropped (the byte count, in
       ASCII: the recorder's limits dropped that much just before): time (8 bytes, ns since
       the epoch), the number of targets (1), per target its session index (2), its seq in that
       session (4) and the span id the chunk belongs to (8); then the bytes
``E``  end (JSON): the command's exit status and the sessions no shell ever named
=====  =================================================================================

The recorder numbers the chunks of each session (seq) and sends each chunk once with all the
sessions it belongs to (nested shells: the outer ones too), so an agent that restarts keeps the
numbering and never has to know what came before. Only this module knows the layout.
"""

from __future__ import annotations

import json
import struct

SOCKET = "rec.sock"
HELLO, SESSION, END = ord("H"), ord("S"), ord("E")
OUTPUT, INPUT, RESIZE, DROPPED = ord("o"), ord("i"), ord("r"), ord("d")
DATA_TYPES = frozenset((OUTPUT, INPUT, RESIZE, DROPPED))
HEADER = struct.Struct("<BI")
DATA_HEAD = struct.Struct("<qB")
TARGET = struct.Struct("<HI8s")
SESSION_BODY = struct.Struct("<H16s8sB")
MAX_MESSAGE = 4 * 1024 * 1024  # a larger length is a broken stream


class ChannelError(ValueError):
    """A message that does not follow the layout (the agent drops the connection)."""


# --- writing (recorder) ------------------------------------------------------------------------

def hello(info: dict) -> bytes:
    body = json.dumps(info).encode()
    return HEADER.pack(HELLO, len(body)) + body


def end(info: dict) -> bytes:
    body = json.dumps(info).encode()
    return HEADER.pack(END, len(body)) + body


def session(index: int, trace_id: bytes, root_span_id: bytes, named: bool) -> bytes:
    return HEADER.pack(SESSION, SESSION_BODY.size) + SESSION_BODY.pack(index, trace_id,
                                                                       root_span_id, named)


def data_head(kind: int, time_ns: int, targets: bytes, count: int, length: int) -> bytes:
    """The header of a data message whose ``length`` bytes follow; ``targets`` is ``count``
    packed ``TARGET`` entries."""
    return (HEADER.pack(kind, DATA_HEAD.size + len(targets) + length)
            + DATA_HEAD.pack(time_ns, count) + targets)


def extend_length(buffer: bytearray, offset: int, more: int) -> None:
    """Grow the length of the message that starts at ``offset`` by ``more`` bytes (output
    appended to the last message: a recorder coalesces a burst into one chunk)."""
    kind, length = HEADER.unpack_from(buffer, offset)
    HEADER.pack_into(buffer, offset, kind, length + more)


# --- reading (agent) ---------------------------------------------------------------------------

class Reader:
    """Cuts a connection's byte stream into (type, body) messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buffer
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= HEADER.size:
            kind, length = HEADER.unpack_from(buf, pos)
            if length > MAX_MESSAGE:
                raise ChannelError(f"message of {length} bytes")
            if len(buf) - pos - HEADER.size < length:
                break
            start = pos + HEADER.size
            out.append((kind, bytes(buf[start:start + length])))
            pos = start + length
        del buf[:pos]
        return out


def decode_json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ChannelError(f"bad JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ChannelError("JSON message is not an object")
    return value


def decode_session(body: bytes) -> tuple[int, bytes, bytes, bool]:
    if len(body) != SESSION_BODY.size:
        raise ChannelError("bad session message")
    index, trace_id, root, named = SESSION_BODY.unpack(body)
    return index, trace_id, root, bool(named)


def decode_data(body: bytes) -> tuple[int, list[tuple[int, int, bytes]], bytes]:
    """(time in ns, [(session index, seq, span id)], the bytes) of a data message."""
    if len(body) < DATA_HEAD.size:
        raise ChannelError("short data message")
    time_ns, count = DATA_HEAD.unpack_from(body)
    start = DATA_HEAD.size + count * TARGET.size
    if len(body) < start:
        raise ChannelError("short data message")
    targets = [TARGET.unpack_from(body, DATA_HEAD.size + i * TARGET.size) for i in range(count)]
    return time_ns, targets, body[start:]
