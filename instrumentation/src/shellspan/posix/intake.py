"""The agent's intake of terminal recordings: the recorders' channel, redaction, log records.

``shellspan record`` processes connect to ``rec.sock`` in the runtime directory and send their
chunks (``shellspan.recording.channel``). For each connection this module decodes the chunks as
UTF-8 (a character cut between two reads is joined), redacts output and input line by line
across chunk boundaries (``shellspan.recording.textredact``), builds one log record per chunk
and session (``shellspan.recording.records``) and hands them, in batches, to an ``Exporter``
of the logs signal: OTLP/HTTP to ``/v1/logs`` with the same breaker, spool, hand-off and tokens
as the spans. It runs on a thread of its own, so the hooks' journals are read meanwhile; the
recorders never wait for it (they keep what it has not taken yet).

A recording whose command never ran an instrumented shell (no mark named the session the
recorder chose) gets its session spans here when it ends, so it is listed like any session.
"""

from __future__ import annotations

import codecs
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from shellspan import semconv as sc
from shellspan import spans
from shellspan.config import Config
from shellspan.export import LOGS, Exporter
from shellspan.otlp import LogData, SpanData
from shellspan.posix import procfs
from shellspan.posix.runtime import path
from shellspan.recording import channel, records
from shellspan.recording.channel import ChannelError
from shellspan.recording.textredact import StreamRedactor
from shellspan.redact import Redactor

HOLD_S = 2.0  # text waiting for the end of its line is released after this long
BATCH_S = 1.0  # records go to the exporter at least this often
BATCH_BYTES = 1024 * 1024  # ...or once this much is waiting
_CRED = struct.Struct("3i")


class Stream:
    """Output or input of one recording: UTF-8 decoding and redaction across chunks."""

    def __init__(self, redactor: Redactor) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = StreamRedactor(redactor)
        self.key: tuple = ()  # the sessions and spans of the chunks held


class Connection:
    """One recorder's connection."""

    def __init__(self, sock: socket.socket, peer_pid: int, redactor: Redactor) -> None:
        self.sock = sock
        self.peer_pid = peer_pid
        self.reader = channel.Reader()
        self.hello: dict[str, Any] = {}
        self.sessions: dict[int, tuple[bytes, bytes]] = {}  # index -> (trace id, root span)
        self.named: set[int] = set()  # sessions a shell's mark named
        self.output = Stream(redactor)
        self.input = Stream(redactor)
        self.ended = False

    @property
    def command(self) -> str:
        cmd = self.hello.get("command") or []
        return " ".join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd)


class Intake:
    def __init__(self, directory: str, config: Config, redactor: Redactor, *,
                 submit_span: Callable[[SpanData], None], host: str,
                 user_name: Callable[[], str], log: Callable[[str], None],
                 exporter: Exporter | None = None) -> None:
        self.dir = directory
        self.config = config
        self.redactor = redactor
        self.submit_span = submit_span
        self.host = host
        self.user_name = user_name
        self.log = log
        self.exporter = exporter
        self.path = path(channel.SOCKET, directory)
        self.listener: socket.socket | None = None
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, Connection] = {}
        self.batch: list[LogData] = []
        self.batch_bytes = 0
        self.batch_due = 0.0
        self.stats = {"recordings": 0, "records": 0, "bytes": 0, "refused": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the connections, for ``busy`` and ``status``

    # --- set-up --------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on ``rec.sock`` (made 0600 under another name, then renamed into place) and
        start the intake thread."""
        tmp = f"{self.path}.{os.getpid()}.new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(64)
        os.rename(tmp, self.path)
        sock.setblocking(False)
        self.listener = sock
        self.selector.register(sock, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="shellspan-intake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking connections; what is held goes out (the exporter flushes it or spools
        it within two seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            if self.listener is not None and os.stat(self.path).st_ino == os.fstat(
                    self.listener.fileno()).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        if self.exporter is not None:
            self.exporter.flush(2.0)

    def busy(self) -> bool:
        with self._lock:
            return bool(self.connections)

    def status(self) -> dict[str, Any]:
        with self._lock:
            live = [{"pid": c.peer_pid, "command": c.command} for c in self.connections.values()]
        return {"live": live, **self.stats}

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _mask in self.selector.select(self._timeout()):
                    if key.fileobj is self.listener:
                        self._accept()
                    else:
                        self._read(key.fileobj)
                self._tick(time.monotonic())
            for conn in list(self.connections.values()):
                self._close(conn)
            self._submit()
        except Exception as exc:  # noqa: BLE001 - said in the log; the agent goes on
            self.log(f"recording intake stopped: {exc!r}")

    def _timeout(self) -> float:
        return 0.25 if self.batch or self.connections else 1.0

    def _tick(self, now: float) -> None:
        for conn in self.connections.values():
            for stream in (conn.output, conn.input):
                if stream.text.held and stream.text.age(now) >= HOLD_S:
                    self._released(conn, stream, stream.text.release())
        if self.batch and (now >= self.batch_due or self.batch_bytes >= BATCH_BYTES):
            self._submit()

    def _accept(self) -> None:
        try:
            sock, _addr = self.listener.accept()
        except OSError:
            return
        try:
            pid, uid, _gid = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          _CRED.size))
        except OSError:
            pid, uid = 0, -1
        if uid != os.geteuid():  # only this user's recorders
            self.stats["refused"] += 1
            sock.close()
            return
        sock.setblocking(False)
        conn = Connection(sock, pid, self.redactor)
        with self._lock:
            self.connections[sock.fileno()] = conn
        self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        conn = self.connections.get(sock.fileno())
        if conn is None:
            return
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        try:
            for kind, body in conn.reader.feed(data):
                self._message(conn, kind, body)
        except ChannelError as exc:
            self.log(f"recording from pid {conn.peer_pid}: {exc}; connection dropped")
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        for stream in (conn.output, conn.input):
            self._released(conn, stream, stream.text.release())
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        with self._lock:
            self.connections.pop(conn.sock.fileno(), None)
        conn.sock.close()
        if not conn.ended and conn.hello and not procfs.alive(conn.peer_pid):
            # The recorder died without its end message (killed): its sessions that no
            # shell named are closed here, as the agent closes a vanished shell's.
            self._end_unnamed(conn, [i for i in conn.sessions if i not in conn.named], None,
                              "orphaned")

    # --- messages ------------------------------------------------------------------------------

    def _message(self, conn: Connection, kind: int, body: bytes) -> None:
        if kind in channel.DATA_TYPES:
            self._data(conn, kind, body)
        elif kind == channel.SESSION:
            index, trace_id, root, named = channel.decode_session(body)
            conn.sessions[index] = (trace_id, root)
            if named:
                conn.named.add(index)
        elif kind == channel.HELLO:
            if not conn.hello:
                self.stats["recordings"] += 1
            conn.hello = channel.decode_json(body)
        elif kind == channel.END:
            info = channel.decode_json(body)
            for stream in (conn.output, conn.input):
                self._released(conn, stream, stream.text.release())
            conn.ended = True
            status = info.get("status")
            unnamed = [i for i in info.get("unnamed", []) if isinstance(i, int)]
            self._end_unnamed(conn, unnamed, status if isinstance(status, int) else None,
                              "exit")
        else:
            raise ChannelError(f"unknown message type {kind}")

    def _data(self, conn: Connection, kind: int, body: bytes) -> None:
        time_ns, targets, data = channel.decode_data(body)
        targets = [t for t in targets if t[0] in conn.sessions]
        if not targets:
            return
        self.stats["bytes"] += len(data)
        if kind in (channel.OUTPUT, channel.INPUT):
            stream = conn.output if kind == channel.OUTPUT else conn.input
            key = tuple((index, span) for index, _seq, span in targets)
            if stream.text.held and key != stream.key:  # a new command: lines end here
                self._released(conn, stream, stream.text.release())
            stream.key = key
            text = stream.decoder.decode(data)
            self._released(conn, stream, stream.text.add(text, (kind, time_ns, targets),
                                                         time.monotonic()))
            return
        now = time.time_ns()
        text = data.decode("ascii", "replace")
        for index, seq, span in targets:
            trace_id = conn.sessions[index][0]
            if kind == channel.DROPPED:
                count = int(text) if text.isdigit() else 0
                rec = records.dropped(trace_id, span, seq=seq, time_ns=time_ns, observed_ns=now,
                                      count=count)
            else:  # a resize; the first record of a recording says what is recorded
                first = seq == 1
                rec = records.chunk(trace_id, span, seq=seq, time_ns=time_ns,
                                    event=sc.RECORDING_RESIZE, body=text, observed_ns=now,
                                    term=str(conn.hello.get("term", "")) if first else None,
                                    command=conn.command if first else None)
            self._add(rec)

    def _released(self, conn: Connection, stream: Stream,
                  released: list[tuple[object, str, bool]]) -> None:
        now = time.time_ns()
        for payload, text, redacted in released:
            kind, time_ns, targets = payload
            event = sc.RECORDING_OUTPUT if kind == channel.OUTPUT else sc.RECORDING_INPUT
            for index, seq, span in targets:
                self._add(records.chunk(conn.sessions[index][0], span, seq=seq,
                                        time_ns=time_ns, event=event, body=text,
                                        observed_ns=now, redacted=redacted))

    def _add(self, rec: LogData) -> None:
        if not self.batch:
            self.batch_due = time.monotonic() + BATCH_S
        self.batch.append(rec)
        self.batch_bytes += len(rec.body) + 100
        self.stats["records"] += 1

    def _submit(self) -> None:
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        if not batch:
            return
        if self.exporter is None:
            self.exporter = Exporter(self.config, LOGS)
            self.exporter.start()
        self.exporter.submit_many(batch)

    # --- sessions without a shell ----------------------------------------------------------------

    def _end_unnamed(self, conn: Connection, indexes: list[int], status: int | None,
                     reason: str) -> None:
        """Spans for the sessions no shell named: the recorded command ran no instrumented
        shell, so nothing else says the session exists."""
        hello = conn.hello
        command = hello.get("command") or ["?"]
        start_ns = int(hello.get("start_ns") or time.time_ns())
        end_ns = time.time_ns()
        for index in indexes:
            if index not in conn.sessions:
                continue
            trace_id, root = conn.sessions[index]
            attrs = spans.identity(
                session_id=trace_id.hex(), shell_type=os.path.basename(str(command[0])),
                user=self.user_name(), host=self.host, pid=int(hello.get("child") or 0),
                parent_pid=int(hello.get("pid") or 0), tty=str(hello.get("tty", "")))
            if status is not None and status > 128 and reason == "exit":
                reason = "signal"
            self.submit_span(spans.start_span(trace_id, root, attrs, start_ns, start_ns))
            self.submit_span(spans.session_span(
                trace_id, root, attrs, start_ns=start_ns, end_ns=end_ns, reason=reason,
                exit_code=status, command_count=0, failed_count=0, last_cwd=""))
