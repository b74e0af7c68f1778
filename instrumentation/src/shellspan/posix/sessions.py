"""Records → sessions → spans: what the agent knows about each bash/zsh session.

``SessionTracker`` takes the typed records of ``shellspan.posix.records``, keeps one
``ShellSession`` per live shell, and hands every span it builds (with ``shellspan.spans``) to
the ``emit`` callback. It also closes sessions whose shell vanished without an exit record.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

from shellspan import semconv as sc
from shellspan import spans
from shellspan.otlp import Link, SpanData, new_span_id, parse_traceparent
from shellspan.posix import procfs
from shellspan.posix.records import (
    FLAG_DUPLICATE,
    FLAG_HISTORY,
    FLAG_SPACE,
    FLAG_UNKNOWN,
    Begin,
    Command,
    End,
    Exit,
    Record,
    Start,
    history_text,
)
from shellspan.redact import MARK, Redactor

_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*$")
CLOSED_KEEP = 1000  # ended sessions remembered (their late records are dropped)

Emit = Callable[[SpanData, bool], None]  # (span, export at once)


def command_name(text: str) -> str:
    """The program a shell command line runs: its first word after ``VAR=value`` prefixes
    and grouping characters (``(``, ``{``, ``!``)."""
    for word in re.split(r"[\s;|&<>()]+", text.lstrip(" \t\n({!")):
        if not word or _ASSIGN.match(word):
            continue
        return word
    return ""


def _ns(us: int | None, default: int) -> int:
    return us * 1000 if us else default


class ShellSession:
    """One bash/zsh session as the agent sees it."""

    def __init__(self, sid: str, pid: int, shell: str, start_ns: int, root: bytes) -> None:
        self.sid, self.pid, self.shell = sid, pid, shell
        self.trace_id = bytes.fromhex(sid)
        self.root = root
        self.start_ns = start_ns
        self.attributes: dict = {}
        self.links: list[Link] = []
        self.proc_start: int | None = None
        self.tty = ""
        self.cwd = ""
        self.command_count = 0
        self.failed_count = 0
        self.last_text = ""
        self.pending: Begin | None = None  # zsh: a command that started and has not ended
        self.next_heartbeat = 0.0
        self.last_seen = time.time()


class SessionTracker:
    """The live sessions of one user, fed with records; emits their spans."""

    def __init__(self, emit: Emit, *, host: str, redactor: Redactor, heartbeat_s: float,
                 ignorespace: str = "redact", user_name: Callable[[], str] = lambda: "",
                 on_close: Callable[[ShellSession], None] | None = None,
                 log: Callable[[str], None] = lambda _msg: None) -> None:
        self.emit = emit
        self.host = host
        self.redactor = redactor
        self.heartbeat_s = heartbeat_s
        self.ignorespace = ignorespace
        self.user_name = user_name
        self.on_close = on_close
        self.log = log
        self.sessions: dict[str, ShellSession] = {}
        self.by_pid: dict[int, ShellSession] = {}
        self.closed: dict[str, float] = {}  # sessions ended lately: late records are dropped
        self.boot = procfs.boot_time()

    # --- records -------------------------------------------------------------------------------

    def handle(self, rec: Record) -> None:
        if isinstance(rec, Start):
            self.start(rec)
            return
        sess = self.sessions.get(rec.session_id) or self.adopt(rec.pid, rec.session_id)
        if sess is None:
            return
        sess.last_seen = time.time()
        if isinstance(rec, Command):
            self.command(sess, rec.seq, rec.span, rec.start_us, rec.end_us, rec.status,
                         rec.pipestatus, rec.cwd, rec.flags, rec.text)
        elif isinstance(rec, Begin):
            sess.pending = rec
        elif isinstance(rec, End):
            p = sess.pending
            if p is not None and p.seq == rec.seq:
                sess.pending = None
                self.command(sess, p.seq, p.span, p.start_us, rec.end_us, rec.status,
                             rec.pipestatus, p.cwd, p.flags, p.text)
        elif isinstance(rec, Exit):
            self.close(sess, rec.reason or "exit", rec.status, _ns(rec.time_us, time.time_ns()))

    def start(self, rec: Start) -> None:
        sid = rec.session_id
        if sid in self.sessions or sid in self.closed:
            return
        sess = ShellSession(sid, rec.pid, rec.shell or "sh", _ns(rec.start_us, time.time_ns()),
                            rec.root_span or new_span_id())
        self._describe(sess, ppid=rec.ppid or 0, user=rec.user, ssh=rec.ssh, cwd=rec.cwd,
                       shlvl=rec.shlvl, traceparent=rec.parent_traceparent, version=rec.version)
        self.register(sess)
        self._emit_start(sess)

    def adopt(self, pid: int, sid: str) -> ShellSession | None:
        """A record of a session never seen starting (it started before this agent)."""
        if sid in self.closed:
            return None
        self.log(f"adopting session {sid} of pid {pid}")
        start_ns = procfs.start_time_ns(pid, self.boot) or time.time_ns()
        sess = ShellSession(sid, pid, procfs.comm(pid) or "sh", start_ns, new_span_id())
        self._describe(sess, cwd=procfs.cwd_of(pid))
        sess.attributes[sc.SESSION_ADOPTED] = True
        self.register(sess)
        self._emit_start(sess)
        return sess

    def _describe(self, sess: ShellSession, *, ppid: int = 0, user: str = "", ssh: str = "",
                  cwd: str = "", shlvl: int | None = None, traceparent: str = "",
                  version: str = "") -> None:
        st = procfs.stat(sess.pid)
        sess.proc_start = st[1] if st else None
        sess.tty = procfs.tty_of(sess.pid)
        sess.cwd = cwd
        ssh_words = ssh.split()
        attrs = spans.identity(
            session_id=sess.sid, shell_type=sess.shell, user=user or self.user_name(),
            host=self.host, pid=sess.pid, parent_pid=ppid, tty=sess.tty,
            client_address=ssh_words[0] if ssh_words else "", cwd=cwd)
        if shlvl is not None and shlvl >= 0:
            attrs[sc.SHELL_LEVEL] = shlvl
        if version:
            attrs[sc.SHELL_VERSION] = version
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent:
            spans.parent_link(attrs, sess.links, parent[0], parent[1])
        sess.attributes = attrs

    def register(self, sess: ShellSession) -> None:
        old = self.by_pid.get(sess.pid)
        if old is not None and old is not sess:  # the pid was reused: the old shell is gone
            self.close(old, "orphaned", None, time.time_ns())
        self.sessions[sess.sid] = sess
        self.by_pid[sess.pid] = sess
        sess.next_heartbeat = time.monotonic() + self.heartbeat_s

    def _emit_start(self, sess: ShellSession) -> None:
        self.emit(spans.start_span(sess.trace_id, sess.root, sess.attributes, sess.start_ns,
                                   time.time_ns()), True)

    def command(self, sess: ShellSession, seq: int | None, span: bytes | None,
                start_us: int | None, end_us: int | None, status: int | None,
                pipestatus: tuple[int, ...], cwd: str, flags: str, text: str) -> None:
        end_ns = _ns(end_us, time.time_ns())
        start_ns = _ns(start_us, end_ns)
        code = status if status is not None else 0
        redacted = False
        if flags == FLAG_HISTORY:
            text = history_text(text)
        elif flags == FLAG_DUPLICATE:
            text = sess.last_text
        if flags in (FLAG_UNKNOWN, FLAG_SPACE) or (flags == FLAG_DUPLICATE and not text):
            if self.ignorespace == "drop":
                return
            text, redacted, name = MARK, True, ""
        else:
            sess.last_text = text
            text, redacted = self.redactor.redact(text)
            name = command_name(text)
        sess.command_count += 1
        if spans.command_failed(code):
            sess.failed_count += 1
        sess.cwd = cwd or sess.cwd
        self.emit(spans.command_span(
            sess.trace_id, sess.root, span or new_span_id(),
            seq=seq if seq is not None else sess.command_count, text=text, name=name, cwd=cwd,
            start_ns=start_ns, end_ns=end_ns, exit_code=code, redacted=redacted,
            extra={sc.COMMAND_PIPESTATUS: list(pipestatus)} if pipestatus else None), False)

    def close(self, sess: ShellSession, reason: str, code: int | None, end_ns: int) -> None:
        if sess.pending is not None:  # zsh: the command that was running when the shell died
            p, sess.pending = sess.pending, None
            self.command(sess, p.seq, p.span, p.start_us, end_ns // 1000,
                         code if code is not None else -1, (), p.cwd, p.flags, p.text)
        self.emit(spans.session_span(
            sess.trace_id, sess.root, sess.attributes, start_ns=sess.start_ns, end_ns=end_ns,
            reason=reason, exit_code=code, command_count=sess.command_count,
            failed_count=sess.failed_count, last_cwd=sess.cwd, links=sess.links), True)
        self.sessions.pop(sess.sid, None)
        self.closed[sess.sid] = time.monotonic()
        if len(self.closed) > CLOSED_KEEP:
            for sid in sorted(self.closed, key=self.closed.get)[:CLOSED_KEEP // 2]:
                del self.closed[sid]
        if self.by_pid.get(sess.pid) is sess:
            del self.by_pid[sess.pid]
        if self.on_close is not None:
            self.on_close(sess)

    # --- watching --------------------------------------------------------------------------------

    def watch(self) -> None:
        """Close the sessions whose shell is gone; heartbeats for the others."""
        now = time.monotonic()
        for sess in list(self.sessions.values()):
            st = procfs.stat(sess.pid)
            gone = (not procfs.alive(sess.pid)
                    or (st is not None and sess.proc_start is not None and st[1] != sess.proc_start))
            if gone:
                hangup = bool(sess.tty) and not os.path.exists(sess.tty)
                self.close(sess, "hangup" if hangup else "orphaned", 129 if hangup else None,
                           time.time_ns())
                continue
            if now >= sess.next_heartbeat:
                sess.next_heartbeat = now + self.heartbeat_s
                self.emit(spans.heartbeat_span(sess.trace_id, sess.root, shell_type=sess.shell,
                                               cwd=sess.cwd, command_count=sess.command_count,
                                               now_ns=time.time_ns()), False)
