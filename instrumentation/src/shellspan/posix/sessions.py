"""Records → sessions → spans: what the agent knows about each bash/zsh session.

``SessionTracker`` takes the typed records of ``shellspan.posix.records``, keeps one
``ShellSession`` per live shell, and hands every span it builds (with ``shellspan.spans``) to
the ``emit`` callback. It also closes sessions whose shell vanished without an exit record.

How a session ends (the table in docs/posix-shells.md):

- the exit hook says ``exit``, ``eof``, ``hangup`` or ``signal`` (``Exit.how``); the command
  that was running, if any, is the ``exit`` builtin (it ends with the shell's status) or was
  cut short (stored as interrupted: no exit code is invented);
- the shell vanished without its exit hook (``kill -9``, a crash): ``orphaned``, no exit
  code; a running command is interrupted;
- the same pid starts a new session (``exec bash``): ``exec``; the command that ran ``exec``
  has no exit code, and the new session links to it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from shellspan import semconv as sc
from shellspan import spans
from shellspan.otlp import Link, SpanData, new_span_id, parse_traceparent
from shellspan.posix import procfs
from shellspan.posix.records import (
    FLAG_HIDDEN,
    Begin,
    Command,
    End,
    Exit,
    Record,
    Start,
    join_lines,
)
from shellspan.redact import MARK, Redactor

_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*$")
CLOSED_KEEP = 1000  # ended sessions remembered (their late records are dropped)
INTERRUPTED = "interrupted"
ANCESTORS = 12  # how far up the process tree a session's parent is looked for

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
        self.pending: Begin | None = None  # a command that started and has not ended
        self.next_heartbeat = 0.0
        self.last_seen = time.time()


class SessionTracker:
    """The live sessions of one user, fed with records; emits their spans."""

    def __init__(self, emit: Emit, *, host: str, redactor: Redactor, heartbeat_s: float,
                 user_name: Callable[[], str] = lambda: "",
                 on_close: Callable[[ShellSession], None] | None = None,
                 log: Callable[[str], None] = lambda _msg: None) -> None:
        self.emit = emit
        self.host = host
        self.redactor = redactor
        self.heartbeat_s = heartbeat_s
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
        if isinstance(rec, Begin):
            if sess.pending is not None:  # its end never came (the shell lost it)
                self._interrupted(sess, _ns(rec.start_us, time.time_ns()))
            sess.pending = rec
        elif isinstance(rec, End):
            p = sess.pending
            if p is not None and p.seq == rec.seq:
                sess.pending = None
                self.command(sess, p, end_ns=_ns(rec.end_us, time.time_ns()),
                             exit_code=rec.status if rec.status is not None else 0,
                             pipestatus=rec.pipestatus)
        elif isinstance(rec, Command):
            begin = Begin(rec.pid, rec.session_id, rec.seq, rec.span, rec.start_us, rec.cwd,
                          rec.flags, rec.breaks, rec.text)
            self.command(sess, begin, end_ns=_ns(rec.end_us, time.time_ns()),
                         exit_code=rec.status if rec.status is not None else 0,
                         pipestatus=rec.pipestatus)
        elif isinstance(rec, Exit):
            self.exited(sess, rec)

    def start(self, rec: Start) -> None:
        sid = rec.session_id
        if sid in self.sessions or sid in self.closed:
            return
        start_ns = _ns(rec.start_us, time.time_ns())
        old = self.by_pid.get(rec.pid)
        if old is not None and self._is_exec(old, rec):
            self._end_by_exec(old, start_ns)
        sess = ShellSession(sid, rec.pid, rec.shell or "sh", start_ns,
                            rec.root_span or new_span_id())
        self._describe(sess, ppid=rec.ppid or 0, user=rec.user, ssh=rec.ssh, cwd=rec.cwd,
                       shlvl=rec.shlvl, traceparent=rec.parent_traceparent, version=rec.version,
                       ancestors=rec.ancestors)
        self.register(sess)
        self._emit_start(sess)

    @staticmethod
    def _is_exec(old: ShellSession, rec: Start) -> bool:
        """A new session in the process of a live one: ``exec bash``. Known from the process
        (the same start time) or, when it has already gone by the time the records are read,
        from the new shell's TRACEPARENT: a command of the old session started it."""
        st = procfs.stat(rec.pid)
        if st is not None and old.proc_start is not None:
            return st[1] == old.proc_start
        parent = parse_traceparent(rec.parent_traceparent) if rec.parent_traceparent else None
        return parent is not None and parent[0] == old.trace_id

    def adopt(self, pid: int, sid: str) -> ShellSession | None:
        """A record of a session never seen starting (it started before this agent)."""
        if sid in self.closed:
            return None
        self.log(f"adopting session {sid} of pid {pid}")
        start_ns = procfs.start_time_ns(pid, self.boot) or time.time_ns()
        sess = ShellSession(sid, pid, procfs.comm(pid) or "sh", start_ns, new_span_id())
        self._describe(sess, cwd=procfs.cwd_of(pid), ppid=procfs.ppid(pid))
        sess.attributes[sc.SESSION_ADOPTED] = True
        self.register(sess)
        self._emit_start(sess)
        return sess

    def _describe(self, sess: ShellSession, *, ppid: int = 0, user: str = "", ssh: str = "",
                  cwd: str = "", shlvl: int | None = None, traceparent: str = "",
                  version: str = "", ancestors: tuple[tuple[int, str], ...] | None = None
                  ) -> None:
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
        if parent is None:
            if ancestors is None:  # adopted: its start record is gone; the processes now
                ancestors = procfs.ancestors(sess.pid, ANCESTORS)
            parent = self._parent_from(ancestors)
        if parent is not None and parent[0] != sess.trace_id:
            spans.parent_link(attrs, sess.links, parent[0], parent[1])
        sess.attributes = attrs

    def _parent_from(self, ancestors: tuple[tuple[int, str], ...]) -> tuple[bytes, bytes] | None:
        """The command that started this shell when its environment did not say (``su -``,
        ``sudo -i`` and ``sudo -s`` clear it): the first of its ancestors (nearest first) that
        is a shell this agent knows (its running command), or that was started with a
        ``TRACEPARENT`` (as ``su``/``sudo`` were)."""
        for pid, traceparent in ancestors:
            known = self.by_pid.get(pid)
            if known is not None and known.pending is not None and known.pending.span:
                return known.trace_id, known.pending.span
            parent = parse_traceparent(traceparent) if traceparent else None
            if parent is not None:
                return parent
        return None

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

    def command(self, sess: ShellSession, begin: Begin, *, end_ns: int, exit_code: int | None,
                pipestatus: tuple[int, ...] = (), message: str = "") -> None:
        """One command span: the text as typed, redacted; a hidden one (typed with a leading
        space) is recorded and marked. With no text (``SHELLSPAN_HIDDEN_COMMANDS=redact``, or
        none could be read) it is stored as redacted."""
        # A command never ends with a newline (the one a here-document's last line keeps).
        text = (join_lines(begin.text, begin.breaks) if begin.breaks else begin.text).rstrip("\n")
        extra: dict = {}
        if begin.flags == FLAG_HIDDEN:
            extra[sc.COMMAND_HIDDEN] = True
        if not text:
            text, redacted, name = MARK, True, ""
        else:
            text, redacted = self.redactor.redact(text)
            name = command_name(text)
        text, length = spans.cut_command_line(text)
        if length is not None:
            extra[sc.COMMAND_LINE_LENGTH] = length
        if pipestatus:
            extra[sc.COMMAND_PIPESTATUS] = list(pipestatus)
        sess.command_count += 1
        if spans.command_failed(exit_code, message=message):
            sess.failed_count += 1
        sess.cwd = begin.cwd or sess.cwd
        start_ns = _ns(begin.start_us, end_ns)
        self.emit(spans.command_span(
            sess.trace_id, sess.root, begin.span or new_span_id(),
            seq=begin.seq if begin.seq is not None else sess.command_count, text=text,
            name=name, cwd=begin.cwd, start_ns=start_ns, end_ns=end_ns, exit_code=exit_code,
            redacted=redacted, message=message, extra=extra or None), False)

    def _interrupted(self, sess: ShellSession, end_ns: int) -> None:
        """The running command was cut short: stored with no exit code."""
        p, sess.pending = sess.pending, None
        if p is not None:
            self.command(sess, p, end_ns=end_ns, exit_code=None, message=INTERRUPTED)

    def exited(self, sess: ShellSession, rec: Exit) -> None:
        end_ns = _ns(rec.time_us, time.time_ns())
        how = rec.how if rec.how in sc.EXIT_REASONS else "exit"
        p = sess.pending
        if p is not None and how == "exit":  # the exit builtin itself: it ends with the shell
            sess.pending = None
            self.command(sess, p, end_ns=end_ns, exit_code=rec.status)
        # A signal the hook could not name: the shell's status is not known either.
        self.close(sess, how, None if how == "signal" else rec.status, end_ns)

    def _end_by_exec(self, sess: ShellSession, end_ns: int) -> None:
        p, sess.pending = sess.pending, None
        if p is not None:  # the command that ran `exec`: replaced, it has no exit code
            self.command(sess, p, end_ns=end_ns, exit_code=None)
        self.close(sess, "exec", None, end_ns)

    def close(self, sess: ShellSession, reason: str, code: int | None, end_ns: int) -> None:
        self._interrupted(sess, end_ns)
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
            if gone:  # without its exit hook, which runs on exit, Ctrl-D and hangups alike
                self.close(sess, "orphaned", None, time.time_ns())
                continue
            if now >= sess.next_heartbeat:
                sess.next_heartbeat = now + self.heartbeat_s
                self.emit(spans.heartbeat_span(sess.trace_id, sess.root, shell_type=sess.shell,
                                               cwd=sess.cwd, command_count=sess.command_count,
                                               now_ns=time.time_ns()), False)
