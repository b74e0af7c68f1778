"""Snapshots of bash and zsh sessions, taken by the agent from /proc (never by the hooks).

A thread of the agent looks at every live shell ten times a second and sends a heartbeat span
carrying a ``shell.snapshot`` event when a session is first seen (``start``) and then every
``SHELLSPAN_SNAPSHOT_INTERVAL`` seconds while commands run (``heartbeat``); the root span gets
the last state at the end (``end``, from what was gathered, with no process started then).

What the agent can see of a shell it does not run in:

* the cwd: the one the hooks record with each command (and /proc/PID/cwd);
* the environment: a shell's /proc/PID/environ is the environment it was started with, and
  its later ``export`` stays inside it. It shows in the environment of the programs it starts:
  when the thread finds a new child of the shell that runs another program (or the same one
  with another environment), it reads that child's environment, which is what the shell
  exported when it started that command (``shell.env.source`` names the command). So a change
  shows once a command that lives long enough to be seen (about a tenth of a second) has run
  after it; a variable set only on one command line (``FOO=1 cmd``) shows as if exported;
  variables that are not exported, and programs of another user (sudo), are never seen;
* the virtualenv and conda environment: ``VIRTUAL_ENV`` / ``CONDA_DEFAULT_ENV`` of that
  environment;
* git: the branch from the repository's HEAD and ``git status`` of the cwd (run by this thread,
  without optional locks, at most every snapshot and once per new directory);
* background and stopped jobs: the shell's children outside the terminal's foreground group;
* resource usage: the shell's CPU time and its waited-for children's, its peak memory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from shellspan import semconv as sc
from shellspan import snapshot, spans
from shellspan.otlp import SpanData
from shellspan.redact import Redactor

PROBE_S = 0.1
GIT_REFRESH_S = 60.0  # a cwd's git state is looked at again after this long at most


class Watched:
    """What the thread knows about one session."""

    __slots__ = ("pid", "exe", "start_env", "env", "env_source", "children", "snapshot_count",
                 "next_snapshot", "usage")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exe = _readlink(f"/proc/{pid}/exe")
        self.start_env = snapshot.parse_environ(_read(f"/proc/{pid}/environ"))
        self.env: dict[str, str] | None = None  # last seen in a child
        self.env_source = ""
        self.children: set[int] = set()
        self.snapshot_count = -1
        self.next_snapshot = 0.0
        self.usage = snapshot.Snapshot()  # CPU and memory, last sampled


class SnapshotWorker:
    """The agent's snapshot thread (see the module's docstring)."""

    def __init__(self, sessions: Callable[[], list], submit: Callable[[SpanData], None],
                 redactor: Redactor, *, interval_s: float, env: dict[str, str]) -> None:
        self.sessions = sessions  # the live ShellSession objects
        self.submit = submit
        self.redactor = redactor
        self.interval_s = interval_s
        self.shown = snapshot.shown_names(env)
        self.watched: dict[str, Watched] = {}
        self.git: dict[str, tuple[float, str | None, bool | None]] = {}  # cwd -> (when, ...)
        self.known_before: set[str] | None = None  # sessions taken over from another agent
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.known_before = {s.sid for s in self.sessions()}
        self._thread = threading.Thread(target=self._run, name="shellspan-snapshots",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(PROBE_S):
            try:
                self.probe(time.monotonic())
            except Exception:  # noqa: BLE001 - snapshots are never worth stopping for
                pass

    def probe(self, now: float) -> None:
        live = {s.sid: s for s in self.sessions()}
        with self._lock:
            for sid in [sid for sid in self.watched if sid not in live]:
                del self.watched[sid]
        for sid, sess in live.items():
            w = self.watched.get(sid)
            if w is None or w.pid != sess.pid:
                w = Watched(sess.pid)
                with self._lock:
                    self.watched[sid] = w
            self._children(w)
            if now >= w.next_snapshot and w.snapshot_count != sess.command_count:
                first = w.snapshot_count < 0
                kind = "start" if first and sid not in (self.known_before or ()) else "heartbeat"
                w.next_snapshot = now + self.interval_s
                w.snapshot_count = sess.command_count
                event = spans.snapshot_event(kind, time.time_ns(),
                                             self._take(sess, w, live=True, start=kind == "start"))
                self.submit(spans.heartbeat_span(
                    sess.trace_id, sess.root, shell_type=sess.shell, cwd=sess.cwd,
                    command_count=sess.command_count, now_ns=time.time_ns(), events=[event]))

    def _children(self, w: Watched) -> None:
        """A new child that runs a program: its environment is the shell's exported one."""
        kids = set(snapshot.children(w.pid))
        for child in kids - w.children:
            raw = _read(f"/proc/{child}/environ")
            if not raw:
                continue
            env = snapshot.parse_environ(raw)
            if _readlink(f"/proc/{child}/exe") == w.exe and env == w.start_env:
                continue  # a subshell (fork without exec): it shows the stale environment
            w.env = env
            w.env_source = f"command {child} {_comm(child)}".strip()
        w.children = kids

    # --- snapshots -----------------------------------------------------------------------------

    def _take(self, sess, w: Watched, *, live: bool, start: bool = False) -> snapshot.Snapshot:
        """The state now (``start``: the environment the shell started with, whatever the
        commands that ran before this first look exported)."""
        snap = snapshot.Snapshot(sess.cwd or _readlink(f"/proc/{w.pid}/cwd"))
        env = w.env if w.env is not None and not start else w.start_env
        snap.env_changed, snap.env_removed = snapshot.env_changes(
            w.start_env, env, self.redactor.redact, self.shown)
        snap.env_source = "start" if start or not w.env_source else w.env_source
        snap.venv, snap.conda_env = snapshot.environment(env)
        if live:
            snap.jobs = snapshot.jobs_of(w.pid, self.redactor.redact)
            snapshot.add_process_usage(w.usage, w.pid)
            self._git(snap.cwd, time.monotonic())
        snap.cpu_user_s, snap.cpu_system_s = w.usage.cpu_user_s, w.usage.cpu_system_s
        snap.max_rss_kb = w.usage.max_rss_kb
        cached = self.git.get(snap.cwd)
        if cached is not None:
            snap.git_branch, snap.git_dirty = cached[1], cached[2]
        return snap

    def _git(self, cwd: str, now: float) -> None:
        cached = self.git.get(cwd)
        if cached is not None and now - cached[0] < min(GIT_REFRESH_S, self.interval_s):
            return
        probe = snapshot.Snapshot(cwd)
        snapshot.add_git(probe)
        self.git[cwd] = (now, probe.git_branch, probe.git_dirty)
        if len(self.git) > 256:
            for old in sorted(self.git, key=lambda k: self.git[k][0])[:128]:
                del self.git[old]

    def decorate(self, span: SpanData, sess) -> None:
        """The end snapshot on a session's root span (the agent's thread: no process is started,
        nothing slow is read)."""
        if span.name != sc.SPAN_SESSION or sess is None:
            return
        with self._lock:
            w = self.watched.get(sess.sid)
        if w is None:
            return
        try:
            span.events.append(spans.snapshot_event("end", span.end_ns,
                                                    self._take(sess, w, live=False)))
        except Exception:  # noqa: BLE001
            pass


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except OSError:
        return b""


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _comm(pid: int) -> str:
    return _read(f"/proc/{pid}/comm").decode("utf-8", "replace").strip()
