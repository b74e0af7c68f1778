"""Drive `shellspan record` in a pty and read its recording back from the sink (tests, bench).

`RecordedTerminal` runs the recorder with pexpect and keeps every byte the (outer) terminal
received, so a test can compare it with what the sink plays back: `asciinema cat` of the
exported file must print exactly what the user saw (unless something was redacted or dropped).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from .background import wait_for
from .posix_shell_helpers import PROMPT

BIN = Path(sys.executable).parent
SHELLSPAN = str(BIN / "shellspan")
ASCIINEMA = str(BIN / "asciinema")


class RecordedTerminal:
    """`shellspan record [OPTIONS] -- ARGV` in a pty of `dimensions` (rows, cols)."""

    def __init__(self, argv: list[str], env: dict[str, str], *, options: tuple[str, ...] = (),
                 dimensions: tuple[int, int] = (30, 100), prompt: str = PROMPT,
                 timeout: float = 30.0, cwd: str | None = None) -> None:
        import pexpect

        self.pexpect = pexpect
        self.prompt = prompt
        self.transcript = io.StringIO(newline="")
        self.child = pexpect.spawn(SHELLSPAN, ["record", *options, "--", *argv], env=env,
                                   encoding="utf-8", codec_errors="replace", timeout=timeout,
                                   dimensions=dimensions, cwd=cwd)
        self.child.logfile_read = self.transcript
        if prompt:
            self.child.expect_exact(prompt)

    @property
    def pid(self) -> int:
        return self.child.pid

    def run(self, line: str) -> str:
        """Type a line and wait for the next prompt; what came in between."""
        self.child.sendline(line)
        self.child.expect_exact(self.prompt)
        return self.child.before

    def finish(self, line: str | None = "exit", timeout: float = 30.0) -> int | None:
        """Type `line` (the shell ends) and wait for the recorder to exit; its exit status."""
        if line is not None:
            self.child.sendline(line)
        self.child.expect(self.pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def output(self) -> str:
        """Everything the terminal received so far."""
        return self.transcript.getvalue()

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


def session_of(recorder_pid: int, timeout: float = 10.0) -> str:
    """The session id the recorder chose for the command it runs (read from the command's
    start-up environment)."""
    def chosen() -> str | None:
        for child in _children(recorder_pid):
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            for entry in environ.split(b"\0"):
                if entry.startswith(b"SHELLSPAN_RECORDER_SESSION="):
                    return entry.split(b"=", 1)[1].decode().split("-")[0]
        return None

    return wait_for(chosen, timeout, f"a recorded command under pid {recorder_pid}", 0.05)


def wait_reading(recorder_pid: int, name: str, timeout: float = 20.0) -> int:
    """The pid of a process called `name` under the recorder once it sleeps (blocked reading
    the terminal, which then has the modes that program set)."""
    def reading() -> int | None:
        todo, seen = [recorder_pid], []
        while todo:
            for child in _children(todo.pop()):
                seen.append(child)
                todo.append(child)
        for pid in seen:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()[0]
            if comm == name and state == "S":
                return pid
        return None

    return wait_for(reading, timeout, f"{name} reading under pid {recorder_pid}", 0.01)


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            out += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return out


def recording(sink, session_id: str) -> tuple[dict, list[list]] | None:
    """(asciicast header, events) of a session's recording at the sink, None when it has none."""
    status, _ctype, body = sink.fetch(f"/api/sessions/{session_id}/recording")
    if status != 200:
        return None
    lines = body.decode().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def output_of(events: list[list]) -> str:
    return "".join(e[2] for e in events if e[1] == "o")


def wait_recording(sink, session_id: str, done, timeout: float = 60.0) -> tuple[dict, list]:
    """The recording once `done(header, events)` holds."""
    last: list = [None]

    def complete() -> tuple[dict, list] | None:
        last[0] = recording(sink, session_id)
        return last[0] if last[0] is not None and done(*last[0]) else None

    return wait_for(complete, timeout, f"the recording of {session_id} to be complete", 0.2,
                    lambda: f"last: {output_of(last[0][1])[-2000:] if last[0] else None!r}")


def asciinema_cat(sink, session_id: str, directory: Path) -> str:
    """The session exported from the sink and printed by the real `asciinema cat`."""
    status, _ctype, body = sink.fetch(f"/api/sessions/{session_id}/recording")
    assert status == 200, status
    path = directory / f"{session_id}.cast"
    path.write_bytes(body)
    proc = subprocess.run([ASCIINEMA, "cat", str(path)], capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode("utf-8", "replace")


def chunks(sink, session_id: str) -> list[tuple[int, str, str, str]]:
    """(seq, span id, event, data) of every stored chunk, in seq order, each seq once."""
    assert len(session_id) == 32 and all(c in "0123456789abcdef" for c in session_id)
    rows = sink.sql("SELECT seq, span_id, event, data FROM shellspan.shell_recordings FINAL "
                    f"WHERE session_id = '{session_id}' ORDER BY seq")["rows"]
    return [(int(seq), span, event, data) for seq, span, event, data in rows]
