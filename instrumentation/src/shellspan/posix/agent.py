"""The per-user agent of bash and zsh sessions (``shellspan agent``): the reading loop.

The hooks append records to their sessions' journal files in the runtime directory; this
process reads them (``journal``, ``records``) on a clock, turns them into spans (``sessions``)
and hands the spans to the shared exporter (OTLP/HTTP, circuit breaker, on-disk spool). Twice
a second it checks every shell's pid: a shell that disappeared without its exit record is
closed as ``orphaned``. Files of the runtime directory: ``r.SESSION.N`` (journals),
``agent.pid``, ``agent.lock``, ``state.json``, ``agent.log``, a bash shell's ``h.PID``
(scratch) and ``l.PID`` (line notes), and ``rec.sock`` (where ``shellspan record`` hands over
terminal recordings: ``intake``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from shellspan.config import Config, _env_float
from shellspan.export import Exporter
from shellspan.otlp import SpanData
from shellspan.posix import daemon, journal, runtime
from shellspan.posix import state as state_file
from shellspan.posix.intake import Intake
from shellspan.posix.journal import Journals, OldFifo
from shellspan.posix.records import Record
from shellspan.posix.runtime import path
from shellspan.posix.sessions import SessionTracker, ShellSession
from shellspan.posix.snapshots import SnapshotWorker
from shellspan.redact import default_redactor

MAX_BATCH = 200
LOCK_WAIT_S = 5.0  # for an agent that is stopping (shells start the next one meanwhile)
OLD_FIFO = "events"  # where records went before journal files


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
        self.exporter = exporter
        self.journals = Journals(directory, on_error=self._bad_record, log=self.log)
        self.old_fifo = OldFifo("")  # opened by prepare()
        self.tracker = SessionTracker(
            self.emit, host=os.uname().nodename, redactor=default_redactor(),
            heartbeat_s=self.config.heartbeat_s, user_name=_login_name, on_close=self._closed,
            log=self.log)
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
        # The journals are read on this clock (a live follower sees a command this much later
        # at most, plus the batch window).
        self.read_s = max(_env_float(self.env, "SHELLSPAN_AGENT_READ_INTERVAL_MS", 50.0), 1.0) / 1e3
        self.lock = daemon.AgentLock(self.dir)
        self.intake: Intake | None = None
        self.snapshots: SnapshotWorker | None = None
        self.started = time.time()
        self.records = 0
        self.dirty = True
        self._stop = False

    # --- set-up ------------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Take the lock (the directory was checked by ``runtime.choose``) and take over from
        the agent before (its sessions, where it stopped reading); False if another agent
        holds the lock."""
        if not self.lock.acquire(LOCK_WAIT_S):
            return False
        if self.exporter is None:
            self.exporter = Exporter(self.config)
            self.exporter.start()
        previous = state_file.read(self.dir)
        for sess in state_file.sessions(previous):
            self.tracker.register(sess)  # take over what a previous agent was watching
        self.journals = Journals(self.dir, state_file.offsets(previous),
                                 on_error=self._bad_record, log=self.log)
        self.old_fifo = OldFifo(path(OLD_FIFO, self.dir), on_error=self._bad_record)
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

    def read(self, old_queues: bool = False) -> None:
        """Read and handle every record written since the last read (with ``old_queues``,
        also what an earlier version's shells left behind: ``journal.old_queues``)."""
        older = journal.old_queues(self.dir, self._bad_record) if old_queues else []
        for record in self.old_fifo.read() + older + self.journals.read():
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
        self.journals.end(sess.sid)
        for scratch in (f"h.{sess.pid}", f"l.{sess.pid}"):
            try:
                os.unlink(path(scratch, self.dir))
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

    # --- state file --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": os.getpid(), "started": self.started, "endpoint": self.config.endpoint,
            "spool_dir": self.config.spool_dir, "records": self.records,
            "sessions": [state_file.session_entry(s) for s in self.tracker.sessions.values()],
            "journals": self.journals.offsets()}
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
        """Read the journals on a clock, not when a shell writes: a shell's write then never
        wakes the agent (no context switch on the shell's time, and none at the moment the
        shell forks the command it is about to run)."""
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
                self.read()
            if self.batch and now >= self.batch_due:
                self.flush_batch()
            if now >= next_watch:
                next_watch = now + self.watch_s
                # a shell's exit record comes before its pid is found gone
                self.read(old_queues=True)
                self.tracker.watch()
                if self.tracker.sessions or self.intake is not None and self.intake.busy():
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
        shells start the next agent), what was written is read and handed on, and where
        reading stopped is kept in the state file for the next agent."""
        daemon.remove_pid_file(self.dir)
        if self.snapshots is not None:
            self.snapshots.stop()
        if self.intake is not None:
            self.intake.stop()
        self.read()
        self.flush_batch()
        self.save_state()
        self.journals.close()
        self.old_fifo.close()
        if self.exporter is not None:
            self.exporter.flush(2.0)
        self.log("stopped")


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
