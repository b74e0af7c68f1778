"""Terminal recordings as the shell side sends them: OTLP log records per the recording contract
(trace id = session, span id = the running command or the root span, seq from 1, a first `r`
record with TERM and the recorder's command), built with the official protobuf classes.

`typical_outputs` captures what real programs print to a terminal (`ls --color`, a compiler's
diagnostics, `top` refreshing in a pseudo-terminal), for tests and the storage benchmark.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from shellspan import semconv

from .otlp_builders import Command, SessionSpec, kv, post, request_for, session_spans


@dataclass
class RecordedCommand:
    """A command and what the terminal showed while it ran."""

    line: str
    output: bytes
    exit_code: int = 0
    duration_s: float = 0.5
    resize_to: tuple[int, int] | None = None  # the window was resized while it ran (cols, rows)


@dataclass
class Recording:
    spans: list[Span]
    records: list[LogRecord]
    spec: SessionSpec
    command_span_ids: list[bytes] = field(default_factory=list)
    root_span_id: bytes = b""

    @property
    def session_id(self) -> str:
        return self.spec.session_id


def record(seq: int, trace_id: bytes, span_id: bytes, time_ns: int, event: str, body: str,
           **extra) -> LogRecord:
    attrs = [kv(semconv.SESSION_ID, trace_id.hex()), kv(semconv.RECORDING_EVENT, event),
             kv(semconv.RECORDING_SEQ, seq)]
    attrs += [kv(getattr(semconv, name), value) for name, value in extra.items()]
    rec = LogRecord(time_unix_nano=time_ns, observed_time_unix_nano=time_ns + 1000,
                    trace_id=trace_id, span_id=span_id, attributes=attrs)
    rec.body.string_value = body
    return rec


def chunks(data: bytes, size: int) -> list[bytes]:
    """`data` cut into reads of at most `size` bytes, never inside a UTF-8 character."""
    out, start = [], 0
    while start < len(data):
        end = min(start + size, len(data))
        while start < end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        if end == start:  # a character longer than `size`: the read takes all of it
            end = start + 1
            while end < len(data) and (data[end] & 0xC0) == 0x80:
                end += 1
        out.append(data[start:end])
        start = end
    return out


def recorded_session(commands: list[RecordedCommand], *, cols: int = 80, rows: int = 24,
                     prompt: str = "$ ", chunk_bytes: int = 4096, user: str = "alice",
                     host: str = "web-1", start_ns: int | None = None,
                     trace_id: bytes | None = None, term: str = "xterm-256color",
                     recorder_command: str = "/bin/bash") -> Recording:
    """The session's spans and its recording: the prompt and the echoed command line between
    commands (root span), each command's output in chunks spread over its run (its span)."""
    spec = SessionSpec(user=user, host=host, commands=[
        Command(c.line, exit_code=c.exit_code, duration_s=c.duration_s) for c in commands])
    if start_ns is not None:
        spec.start_ns = start_ns
    if trace_id is not None:
        spec.trace_id = trace_id
    spans = session_spans(spec)
    command_spans = [s for s in spans if s.name == semconv.SPAN_COMMAND]
    root = command_spans[0].parent_span_id if command_spans else os.urandom(8)
    last = spans[-1] if spans[-1].name == semconv.SPAN_SESSION else None
    spec.duration_s = max(spec.duration_s, (command_spans[-1].end_time_unix_nano - spec.start_ns)
                          / 1e9 + 1 if command_spans else 1)
    if last is not None:
        last.end_time_unix_nano = spec.start_ns + int(spec.duration_s * 1e9)
    tid = spec.trace_id
    records = [record(1, tid, root, spec.start_ns + 100, "r", f"{cols}x{rows}",
                      RECORDING_TERM=term, RECORDING_COMMAND=recorder_command)]

    def add(span_id: bytes, t: int, event: str, body: str) -> None:
        records.append(record(len(records) + 1, tid, span_id, t, event, body))

    for cmd, span in zip(commands, command_spans):
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        add(root, start - 500_000, "o", f"{prompt}{cmd.line}\r\n")
        pieces = chunks(cmd.output, chunk_bytes)
        step = max(1, (end - start) // (len(pieces) + 2))
        for i, piece in enumerate(pieces):
            if cmd.resize_to and i == len(pieces) // 2:
                add(span.span_id, start + (i + 1) * step - 1000, "r", "{}x{}".format(*cmd.resize_to))
            add(span.span_id, start + (i + 1) * step,
                "o", piece.decode("utf-8", errors="replace"))
        if cmd.resize_to and not pieces:
            add(span.span_id, start + step, "r", "{}x{}".format(*cmd.resize_to))
    tail = command_spans[-1].end_time_unix_nano + 200_000 if command_spans else spec.start_ns + 1000
    add(root, tail, "o", prompt)
    return Recording(spans, records, spec, [s.span_id for s in command_spans], root)


def logs_request(records: list[LogRecord], service: str = "shellspan-test",
                 scope_version: str = "0.1.0") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv(semconv.SERVICE_NAME, service))
    sl = rl.scope_logs.add()
    sl.scope.name = "shellspan"
    sl.scope.version = scope_version
    sl.log_records.extend(records)
    return req


def post_logs(url: str, body: bytes, **kwargs):
    return post(url, body, path="/v1/logs", **kwargs)


def store_recording(sink, rec: Recording, headers=None) -> None:
    """Send a recorded session to `sink` (a running SinkProcess), spans then log records, and
    wait until both are stored."""
    assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString(),
                headers=headers).status == 200
    reply = post_logs(sink.otlp_http_endpoint, logs_request(rec.records).SerializeToString(),
                      headers=headers)
    assert reply.status == 200, reply.body
    wait_recording_stored(sink, rec)


def stored_records(sink, session_id: str) -> tuple[int, int]:
    """(rows, distinct seqs) of a session in shell_recordings, deduplicated (FINAL)."""
    assert len(session_id) == 32 and all(c in "0123456789abcdef" for c in session_id)
    row = sink.sql("SELECT count(), uniqExact(seq) FROM shellspan.shell_recordings FINAL "
                   f"WHERE session_id = '{session_id}'")["rows"][0]
    return int(row[0]), int(row[1])


def wait_recording_stored(sink, rec: Recording) -> None:
    """Wait until every record of `rec` and every command of its session are stored."""
    sink.wait_for(lambda: stored_records(sink, rec.session_id)[1] == len(rec.records)
                  and len(sink.session(rec.session_id)["commands"]) == len(rec.command_span_ids),
                  timeout=60)


def to_otlp_json(req: ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping with hex ids."""
    import base64
    import json

    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(req)
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex()
    return json.dumps(doc).encode()


# --- what real programs print to a terminal ------------------------------------------------------

def in_pty(argv: list[str], cols: int = 100, rows: int = 30, timeout: float = 30.0,
           env: dict[str, str] | None = None) -> bytes:
    """Everything `argv` writes to a pseudo-terminal of the given size, until it exits."""
    import fcntl
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of our size, then the program
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvpe(argv[0], argv, {**os.environ, "TERM": "xterm-256color", "LC_ALL": "C.UTF-8",
                                   **(env or {})})
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return bytes(out)


def compiler_errors() -> bytes:
    """A C compiler's coloured diagnostics for a small broken program (b"" without a compiler)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return b""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "broken.c"
        src.write_text("#include <stdio.h>\n"
                       + "".join(f"int f{i}(int x) {{ return x + undefined_{i}; }}\n"
                                 f"void g{i}(void) {{ char *p = {i}; printf(\"%d\\n\", p); }}\n"
                                 for i in range(12)))
        done = subprocess.run([compiler, "-Wall", "-fdiagnostics-color=always", "-c", str(src),
                               "-o", os.devnull], capture_output=True, timeout=60)
    return done.stderr.replace(b"\n", b"\r\n")


def typical_outputs() -> dict[str, bytes]:
    """Real terminal output of typical commands, captured in a pty: {command line: bytes}."""
    outputs = {
        "ls --color=always -l /usr/bin": in_pty(["ls", "--color=always", "-l", "/usr/bin"]),
        "ls --color=always -la /usr/lib": in_pty(["ls", "--color=always", "-la", "/usr/lib"]),
        "cc -Wall -c broken.c": compiler_errors(),
        "top -d 0.2 -n 25": in_pty(["top", "-d", "0.2", "-n", "25"]),
    }
    return {line: data for line, data in outputs.items() if data}


_SIZES_SCRIPT = r"""
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
for table in ("otel_logs", "shell_recordings"):
    # Wide parts, as a table of any size has: each column's size is then known.
    client.command(f"ALTER TABLE shellspan.{table} MODIFY SETTING min_bytes_for_wide_part = 0")
    client.command(f"OPTIMIZE TABLE shellspan.{table} FINAL")
def one(sql):
    return client.query(sql).result_rows[0]
out = {
    "payload": one("SELECT sum(column_data_compressed_bytes) FROM system.parts_columns WHERE "
                   "database = 'shellspan' AND table = 'shell_recordings' AND column = 'data' "
                   "AND active")[0],
    "recordings": one("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'shellspan' "
                      "AND table = 'shell_recordings' AND active")[0],
    "body_zstd1": one("SELECT sum(column_data_compressed_bytes) FROM system.parts_columns WHERE "
                      "database = 'shellspan' AND table = 'otel_logs' AND column = 'Body' "
                      "AND active")[0],
    "otel_logs": one("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'shellspan' "
                     "AND table = 'otel_logs' AND active")[0],
    "raw": one("SELECT sum(length(data)) FROM shellspan.shell_recordings FINAL")[0],
}
print(json.dumps(out))
"""


def stored_sizes(sink) -> dict[str, int]:
    """Bytes the recordings take in a stopped sink's embedded store, after merges: ``payload``
    (shell_recordings.data compressed), ``recordings`` (that table on disk, every column and
    index), ``body_zstd1`` (otel_logs.Body compressed), ``otel_logs`` (that table on disk) and
    ``raw`` (the recorded bytes). Read in a process of its own: the store is the sink's while
    it runs."""
    done = subprocess.run([sys.executable, "-c", _SIZES_SCRIPT, sink.store[len("chdb://"):]],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
