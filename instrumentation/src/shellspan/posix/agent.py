"""The per-user agent of bash and zsh sessions (``shellspan agent``): the FIFO reader and loop.

The hooks write records into the FIFO ``events`` of the runtime directory; this process reads
them (``records``), turns them into spans (``sessions``) and hands the spans to the shared
exporter (OTLP/HTTP, circuit breaker, on-disk spool). Twice a second it checks every shell's
pid: a shell that disappeared without its exit record is closed as ``hangup`` (its terminal
is gone too) or ``orphaned``. Files of the runtime directory: ``events`` (FIFO),
``agent.pid``, ``agent.lock``, ``state.json``, ``agent.log``, ``h.PID`` (a bash shell's
scratch file), ``q.PID`` (records a shell left behind when it exited with no agent up) and
``rec.sock`` (where ``shellspan record`` hands over terminal recordings: ``intake``).
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
from shellspan.posix import daemon, runtime
from shellspan.posix import state as state_file
from shellspan.posix.intake import Intake
from shellspan.posix.records import Record, RecordReader
from shellspan.posix.runtime import path
from shellspan.posix.sessions import SessionTracker, ShellSession
from shellspan.posix.snapshots import SnapshotWorker
from shellspan.redact import default_redactor

FIFO = "events"
PIPE_SIZE = 1024 * 1024  # room for bursts between the agent's reads (Linux; default 64 KiB)
MAX_BATCH = 200


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
            heartbeat_s=self.config.heartbeat_s,
            ignorespace=self.env.get("SHELLSPAN_IGNORESPACE", "redact").lower(),
            user_name=_login_name, on_close=self._closed, log=self.log)
        self.watch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_WATCH_INTERVAL", 0.5), 0.05)
        self.idle_exit_s = _env_float(self.env, "SHELLSPAN_AGENT_IDLE_EXIT", 900.0)
        # Command and heartbeat spans go to the exporter at most once per batch window (start
        # and end spans at once): a span that comes after a quiet window goes at once (a live
        # follower sees the command as the prompt returns), those that follow it within the
        # window wait for its end, so a burst of commands costs a request per window.
        self.batch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_BATCH_MS", 200.0) / 1000.0, 0.0)
        self.batch: list[SpanData] = []
        self.batch_due = 0.0
        self.quiet_until = 0.0  # before this, new spans wait for the window's end
        self.read_pause = max(_env_float(self.env, "SHELLSPAN_AGENT_READ_PAUSE_MS", 20.0), 0.0) / 1e3
        self.lock = daemon.AgentLock(self.dir)
        self.intake: Intake | None = None
        self.snapshots: SnapshotWorker | None = None
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
        self.start_intake()
        if self.config.snapshots and self.exporter is not None:
            self.snapshots = SnapshotWorker(
                lambda: list(self.tracker.sessions.values()), self.exporter.submit,
                self.tracker.redactor, interval_s=self.config.snapshot_s, env=self.env)
            self.snapshots.start()
        daemon.write_pid_file(self.dir)
        return True

    def start_intake(self) -> None:
        """Take terminal recordings from ``shellspan record`` (a failure is logged; the
        agent goes on with the hooks' records)."""
        exporter = self.exporter
        self.intake = Intake(self.dir, self.config, self.tracker.redactor,
                             submit_span=exporter.submit if exporter else lambda _s: None,
                             host=self.tracker.host, user_name=_login_name, log=self.log)
        try:
            self.intake.start()
        except OSError as exc:
            self.log(f"cannot take recordings: {exc!r}")
            self.intake = None

    # --- records -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        for record in self.reader.feed(data):
            self.records += 1
            self.dirty = True
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
        if self.snapshots is not None:  # the end snapshot on a root span
            self.snapshots.decorate(span, self.tracker.sessions.get(span.trace_id.hex()))
        self.batch.append(span)
        if (now or self.batch_s <= 0 or len(self.batch) >= MAX_BATCH
                or time.monotonic() >= self.quiet_until):
            self.flush_batch()
        elif len(self.batch) == 1:
            self.batch_due = self.quiet_until

    def flush_batch(self) -> None:
        self.quiet_until = time.monotonic() + self.batch_s
        batch, self.batch = self.batch, []
        if self.exporter is not None:
            for span in batch:
                self.exporter.submit(span)

    def read_spilled(self) -> None:
        """Records a shell left in ``q.PID`` because it exited before the agent was up."""
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith("q.")]
        except OSError:
            return
        for name in names:
            spilled = path(name, self.dir)
            try:
                fd = os.open(spilled, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    st = os.fstat(fd)
                    data = (os.read(fd, st.st_size + 1) if stat.S_ISREG(st.st_mode)
                            and st.st_uid == os.geteuid() else b"")
                finally:
                    os.close(fd)
                os.unlink(spilled)
            except OSError:
                continue
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
        if self.intake is not None:
            out["recordings"] = self.intake.status()
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
        import select

        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        next_watch = 0.0
        next_save = 0.0
        idle_since = time.monotonic()
        self.log(f"started (pid {os.getpid()}, dir {self.dir}, endpoint {self.config.endpoint})")
        while not self._stop:
            now = time.monotonic()
            due = self.batch_due if self.batch else next_watch
            timeout = max(min(next_watch, next_save, due) - now, 0.0)
            try:
                events = poller.poll(timeout * 1000)
            except InterruptedError:
                events = []
            if events:
                self.drain()
                # Read at most every read_pause seconds: the pipe holds what comes meanwhile,
                # and the shells do not pay for the agent waking up at every record.
                time.sleep(self.read_pause)
            now = time.monotonic()
            if self.batch and now >= self.batch_due:
                self.flush_batch()
            if now >= next_watch:
                next_watch = now + self.watch_s
                self.read_spilled()
                self.drain()  # a shell's exit record comes before its pid is found gone
                self.tracker.watch()
                if self.tracker.sessions or self.intake is not None and self.intake.busy():
                    idle_since = now
                elif self.idle_exit_s > 0 and now - idle_since > self.idle_exit_s:
                    self.log("no sessions left; exiting")
                    break
            if now >= next_save or (self.dirty and now >= next_save - 4.0):
                next_save = now + 5.0
                self.save_state()
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        if self.snapshots is not None:
            self.snapshots.stop()
        if self.intake is not None:
            self.intake.stop()
        self.flush_batch()
        self.save_state()
        daemon.remove_pid_file(self.dir)
        if self.exporter is not None:
            self.exporter.flush(2.0)
        self.log("stopped")


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
