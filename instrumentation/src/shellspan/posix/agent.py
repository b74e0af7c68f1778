"""The per-user agent of bash and zsh sessions (``shellspan agent``): the FIFO reader and loop.

The hooks write records into the FIFO ``events`` of the runtime directory; this process reads
them (``records``), turns them into spans (``sessions``) and hands the spans to the shared
exporter (OTLP/HTTP, circuit breaker, on-disk spool). Twice a second it checks every shell's
pid: a shell that disappeared without its exit record is closed as ``hangup`` (its terminal
is gone too) or ``orphaned``. Files of the runtime directory: ``events`` (FIFO),
``agent.pid``, ``agent.lock``, ``state.json``, ``agent.log``, ``h.PID`` (a bash shell's
scratch file) and ``q.PID`` (records a shell left behind when it exited with no agent up).
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from typing import Any

from shellspan.config import Config, _env_float
from shellspan.export import Exporter
from shellspan.otlp import SpanData
from shellspan.posix import daemon, procfs, runtime
from shellspan.posix import state as state_file
from shellspan.posix.records import Record, RecordReader
from shellspan.posix.runtime import path
from shellspan.posix.sessions import SessionTracker, ShellSession
from shellspan.redact import default_redactor

FIFO = "events"
PIPE_SIZE = 1024 * 1024  # room for bursts between the agent's reads (Linux; default 64 KiB)
MAX_BATCH = 200
SPILL_SETTLE_S = 0.05


def _login_name() -> str:
    from shellspan.session import _user_name

    return _user_name()


def export_status(exporter: Exporter) -> dict[str, Any]:
    """What ``shellspan status`` shows about the export side."""
    st = exporter.status()
    return {"spooled_entries": st.spooled_entries, "spooled_bytes": st.spooled_bytes,
            "last_export_ok": st.last_success, "last_error": st.last_error,
            "breaker_open": st.breaker_open, "breaker": st.breaker, "stats": st.stats}


class Agent:
    def __init__(self, directory: str, env: dict[str, str] | None = None,
                 exporter: Exporter | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.config = Config(self.env)
        self.dir = directory
        self.fifo = path(FIFO, self.dir)
        self.fd = -1
        self.exporter = exporter
        self.reader = RecordReader(on_error=self._bad_record)
        self.tracker = SessionTracker(
            self.emit, host=os.uname().nodename, redactor=default_redactor(),
            heartbeat_s=self.config.heartbeat_s, user_name=_login_name, on_close=self._closed,
            log=self.log)
        self.watch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_WATCH_INTERVAL", 0.5), 0.05)
        self.idle_exit_s = _env_float(self.env, "SHELLSPAN_AGENT_IDLE_EXIT", 900.0)
        # Command and heartbeat spans are handed to the exporter in batches (start and end
        # spans at once), so a burst of commands costs one request, not one per command.
        self.batch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_BATCH_MS", 1000.0) / 1000.0, 0.0)
        self.batch: list[SpanData] = []
        self.batch_due = 0.0
        self.read_s = max(_env_float(self.env, "SHELLSPAN_AGENT_READ_INTERVAL_MS", 200.0), 1.0) / 1e3
        self.lock = daemon.AgentLock(self.dir)
        self.started = time.time()
        self.records = 0
        self.dirty = True
        self._stop = False

    # --- set-up ------------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Create the FIFO and take the lock (the directory was checked by
        ``runtime.choose``); False if another agent holds the lock."""
        import fcntl

        if not self.lock.acquire():
            return False
        self.fd = open_fifo(self.fifo)
        try:
            fcntl.fcntl(self.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
        except OSError:
            pass
        if self.exporter is None:
            self.exporter = Exporter(self.config)
            self.exporter.start()
        for sess in state_file.sessions(state_file.read(self.dir)):
            self.tracker.register(sess)  # take over what a previous agent was watching
        daemon.write_pid_file(self.dir)
        return True

    # --- records -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        for record in self.reader.feed(data):
            self.records += 1
            self.dirty = True  # sessions, commands or pending commands changed
            if self.config.debug:
                self.log(f"record {record!r:.200}")
            try:
                self.handle(record)
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the agent
                self.log(f"cannot handle {record!r:.80}: {exc!r}")

    def handle(self, record: Record) -> None:
        self.tracker.handle(record)

    def _bad_record(self, raw: bytes, why: str) -> None:
        self.log(f"bad record {raw[:80]!r}: {why}")

    def _closed(self, sess: ShellSession) -> None:
        if self.config.debug:
            self.log(f"closed session {sess.sid}")
        self.reader.forget(sess.pid)
        try:
            os.unlink(path(f"h.{sess.pid}", self.dir))
        except OSError:
            pass
        self.dirty = True

    def emit(self, span: SpanData, now: bool = False) -> None:
        if not self.batch:
            self.batch_due = time.monotonic() + self.batch_s
        self.batch.append(span)
        if now or self.batch_s <= 0 or len(self.batch) >= MAX_BATCH:
            self.flush_batch()

    def flush_batch(self) -> None:
        batch, self.batch = self.batch, []
        if self.exporter is not None:
            for span in batch:
                self.exporter.submit(span)

    def read_spilled(self) -> None:
        """Records left in ``q.PID`` files: by shells that exited or queued a lot while no agent
        was up, and by an agent that stopped in the middle of a long record. Read after the
        FIFO, which holds what was written before. A file of a live shell is renamed first
        and read a moment later, so an append that was under way lands in it."""
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.startswith("q."))
        except OSError:
            return
        taken = []
        for name in names:
            spilled = path(name, self.dir)
            pid = name[2:].split(".")[0]
            if pid.isdigit() and "." not in name[2:] and procfs.alive(int(pid)):
                aside = f"{spilled}.{os.getpid()}"
                try:
                    os.rename(spilled, aside)
                except OSError:
                    continue
                taken.append(aside)
                continue
            self._read_spill(spilled)
        if taken:
            time.sleep(SPILL_SETTLE_S)
            for aside in taken:
                self._read_spill(aside)

    def _read_spill(self, spilled: str) -> None:
        try:
            fd = os.open(spilled, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                data = b""
                if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                    chunks = []
                    while chunk := os.read(fd, 1 << 20):
                        chunks.append(chunk)
                    data = b"".join(chunks)
            finally:
                os.close(fd)
            os.unlink(spilled)
        except OSError:
            return
        self.feed(data)

    def drain(self) -> None:
        """Read and handle every record waiting in the FIFO."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if not data:
                return
            self.feed(data)

    # --- state file --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": os.getpid(), "started": self.started, "endpoint": self.config.endpoint,
            "spool_dir": self.config.spool_dir, "records": self.records,
            "sessions": [state_file.session_entry(s) for s in self.tracker.sessions.values()]}
        if self.exporter is not None:
            out.update(export_status(self.exporter))
        return out

    def save_state(self) -> None:
        try:
            state_file.write(self.dir, self.state())
        except OSError as exc:
            self.log(f"cannot write state: {exc!r}")
        self.dirty = False

    # --- main loop ---------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} shellspan-agent: {msg}\n")
        sys.stderr.flush()

    def stop(self, *_args: object) -> None:
        self._stop = True

    def run(self) -> int:
        """Read the FIFO on a clock, not when a shell writes: a shell's write then never wakes
        the agent (no context switch on the shell's time, and none at the moment the shell
        forks the command it is about to run, which would leave a Ctrl-C to the new process
        more time to be lost); the pipe holds what comes between two reads."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        next_read = next_watch = next_save = 0.0
        idle_since = time.monotonic()
        self.log(f"started (pid {os.getpid()}, dir {self.dir}, endpoint {self.config.endpoint})")
        while not self._stop:
            now = time.monotonic()
            due = min(next_read, next_watch, next_save, self.batch_due if self.batch else next_watch)
            if due > now:
                time.sleep(due - now)
                continue
            if now >= next_read:
                next_read = now + self.read_s
                self.drain()
            if self.batch and now >= self.batch_due:
                self.flush_batch()
            if now >= next_watch:
                next_watch = now + self.watch_s
                self.drain()  # a shell's exit record comes before its pid is found gone
                self.read_spilled()
                self.tracker.watch()
                if self.tracker.sessions:
                    idle_since = now
                elif self.idle_exit_s > 0 and now - idle_since > self.idle_exit_s:
                    self.log("no sessions left; exiting")
                    break
            # `shellspan status` reads it: soon after a change, at least every 5 s.
            if now >= next_save or (self.dirty and now >= next_save - 4.8):
                next_save = now + 5.0
                self.save_state()
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        """Stop without losing a record: no longer announced (the pid file goes first, so
        shells queue instead of writing to us), then what is in the FIFO is read; what shells
        write after that stays in the FIFO (they hold it open) for the next agent, and a long
        record caught half-way is left in a q file for it too."""
        daemon.remove_pid_file(self.dir)
        self.drain()
        self._leave_unfinished()
        self.flush_batch()
        self.save_state()
        if self.exporter is not None:
            self.exporter.flush(2.0)
        self.log("stopped")

    def _leave_unfinished(self) -> None:
        pieces = self.reader.unfinished()
        if not pieces:
            return
        try:
            fd = runtime.open_private(path(f"q.{os.getpid()}.0", self.dir),
                                      os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, pieces)
            finally:
                os.close(fd)
        except OSError as exc:
            self.log(f"cannot leave an unfinished record: {exc!r}")


def open_fifo(fifo: str) -> int:
    """Open the FIFO read-write and non-blocking. An existing FIFO of this user is kept: what
    shells wrote while no agent ran is still in it (a pipe lives while anyone holds it open).
    Anything else there (a file, a link, another user's FIFO) is replaced by a new FIFO, made
    and opened under another name first, so no shell can write into it before it is held."""
    flags = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        st = os.lstat(fifo)
        if stat.S_ISFIFO(st.st_mode) and st.st_uid == os.geteuid():
            fd = os.open(fifo, flags)
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
                os.fchmod(fd, 0o600)
            return fd
    except FileNotFoundError:
        pass
    new = f"{fifo}.{os.getpid()}.new"
    try:
        os.unlink(new)
    except FileNotFoundError:
        pass
    os.mkfifo(new, 0o600)
    fd = os.open(new, flags)
    os.fchmod(fd, 0o600)
    os.rename(new, fifo)
    return fd


def main(args: list[str]) -> int:
    """``shellspan agent [--daemon]``: run the agent (in the foreground unless --daemon);
    ``shellspan agent stop``: stop the running agent."""
    choice = runtime.choose()
    if choice.refused:
        sys.stderr.write(f"shellspan agent: not using {choice.wanted}: {choice.refused}\n")
    d = choice.path
    if not d:
        sys.stderr.write("shellspan agent: no usable runtime directory\n")
        return 1
    if args[:1] == ["stop"]:
        return daemon.stop_agent(d)
    if "--daemon" in args:
        daemon.detach(path(daemon.LOG_FILE, d))
    try:  # a background helper: never compete with the interactive shells for the CPU
        os.nice(int(_env_float(os.environ, "SHELLSPAN_AGENT_NICE", 10)))
    except (OSError, AttributeError):
        pass
    agent = Agent(d)
    try:
        if not agent.prepare():
            return 0  # another agent serves this user
    except Exception as exc:  # noqa: BLE001 - said in one line (the log), never a traceback
        agent.log(f"cannot start: {exc!r}")
        return 1
    if choice.refused:
        agent.log(f"not using {choice.wanted}: {choice.refused}")
    return agent.run()
