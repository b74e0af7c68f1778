"""The per-user agent of bash and zsh sessions (``shellspan agent``).

The hook scripts (``shellspan.posix``) write one record per event into a FIFO in the runtime
directory; this process reads them, turns them into spans (``shellspan.spans``), and hands
the spans to the shared exporter (OTLP/HTTP, circuit breaker, on-disk spool). It also watches
every shell's pid: a shell that disappears without its exit record is closed with reason
``hangup`` (its terminal is gone too) or ``orphaned``.

Records are NUL-terminated; fields are separated by ``\\x1f`` and free text is the last field:

====  =====================================================================================
S     pid sid start_us shell root_span ppid shlvl parent_traceparent user ssh version cwd
C     pid sid seq span start_us end_us status pipestatus cwd flags text   (bash: one per command)
B     pid sid seq span start_us cwd flags text                            (zsh: command starts)
E     pid sid seq end_us status pipestatus                                (zsh: command ends)
X     pid sid time_us status reason                                       (exit hook)
T     pid piece        (a piece of a record longer than 900 characters; each write stays
                        below PIPE_BUF, so it is atomic even with many shells writing)
L     pid piece        (the last piece: the pieces joined are the record)
====  =====================================================================================

``flags`` of C/B: ``h`` text is ``fc -l`` output, ``u`` text unknown (not in history: recorded
as redacted), ``d`` a duplicate of the previous command, ``s`` typed with a leading space
(redacted). Every record carries the session id, so an agent started later adopts a session it
never saw start (metadata from /proc). Files: ``events`` (FIFO), ``agent.pid``, ``agent.lock``,
``state.json`` (sessions, export status; read by ``shellspan status``), ``agent.log``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import time

from shellspan import semconv as sc
from shellspan import spans
from shellspan.config import Config, _env_float
from shellspan.otlp import Link, SpanData, new_span_id, parse_traceparent
from shellspan.posix import runtime_dir
from shellspan.redact import MARK, default_redactor
from shellspan.spool import pid_alive

SEP = "\x1f"
FIELDS = {"S": 13, "C": 12, "B": 9, "E": 7, "X": 6, "T": 3, "L": 3}
_FC_ENTRY = re.compile(r"(?m)^\d+\t ")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*$")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def command_name(text: str) -> str:
    """The program a shell command line runs: its first word after ``VAR=value`` prefixes
    and grouping characters (``(``, ``{``, ``!``)."""
    for word in re.split(r"[\s;|&<>()]+", text.lstrip(" \t\n({!")):
        if not word or _ASSIGN.match(word):
            continue
        return word
    return ""


def fc_text(raw: str) -> str:
    """The command text from ``fc -l`` output (one or more ``N<TAB> text`` entries)."""
    parts = _FC_ENTRY.split(raw)
    entries = [p.rstrip("\n") for p in parts[1:]] if len(parts) > 1 else [raw.rstrip("\n")]
    return "\n".join(entries)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    try:
        return rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None


def _boot_time() -> float:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _tty_of(pid: int) -> str:
    for fd in (0, 1, 2):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/") and not target.startswith("/dev/null"):
            return target
    return ""


def _pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a shell killed with -9 stays a zombie until reaped)."""
    st = _proc_stat(pid)
    if st is not None:
        return st[0] not in ("Z", "X")
    if os.path.isdir("/proc/self"):
        return False
    return pid_alive(pid)


def _us_to_ns(value: str, default: int) -> int:
    try:
        return int(value) * 1000
    except ValueError:
        return default


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
        self.pending: dict | None = None  # zsh: a command that started and has not ended
        self.next_heartbeat = 0.0
        self.last_seen = time.time()


class Agent:
    def __init__(self, env: dict[str, str] | None = None, exporter=None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.config = Config(self.env)
        self.dir = runtime_dir(self.env)
        self.fifo = os.path.join(self.dir, "events")
        self.sessions: dict[str, ShellSession] = {}
        self.by_pid: dict[int, ShellSession] = {}
        self.partial: dict[int, str] = {}
        self.closed: dict[str, float] = {}  # sessions ended lately: late records are dropped
        self.exporter = exporter
        self.redactor = default_redactor()
        self.heartbeat_s = self.config.heartbeat_s
        self.watch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_WATCH_INTERVAL", 0.5), 0.05)
        self.idle_exit_s = _env_float(self.env, "SHELLSPAN_AGENT_IDLE_EXIT", 900.0)
        # Command and heartbeat spans are handed to the exporter in batches (start and end
        # spans at once), so a burst of commands costs one request, not one per command.
        self.batch_s = max(_env_float(self.env, "SHELLSPAN_AGENT_BATCH_MS", 1000.0) / 1000.0, 0.0)
        self.batch: list[SpanData] = []
        self.read_pause = max(_env_float(self.env, "SHELLSPAN_AGENT_READ_PAUSE_MS", 20.0), 0.0) / 1e3
        self.batch_due = 0.0
        self.ignorespace = self.env.get("SHELLSPAN_IGNORESPACE", "redact").lower()
        self.host = os.uname().nodename
        self.started = time.time()
        self.records = 0
        self.dirty = True
        self._stop = False
        self._lock_fd = -1
        self._boot = _boot_time()

    # --- set-up ------------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Create the directory and FIFO and take the lock; False if another agent holds it."""
        import fcntl

        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        st = os.stat(self.dir)
        if st.st_uid != os.getuid():
            raise RuntimeError(f"{self.dir} is not owned by this user")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(self.dir, 0o700)
        self._lock_fd = os.open(os.path.join(self.dir, "agent.lock"), os.O_RDWR | os.O_CREAT,
                                0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            return False
        try:
            if not stat.S_ISFIFO(os.lstat(self.fifo).st_mode):
                os.unlink(self.fifo)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkfifo(self.fifo, 0o600)
        self.fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:  # room for bursts between the agent's reads (Linux; the default is 64 KiB)
            import fcntl as _fcntl

            _fcntl.fcntl(self.fd, getattr(_fcntl, "F_SETPIPE_SZ", 1031), 1024 * 1024)
        except OSError:
            pass
        if self.exporter is None:
            from shellspan.export import Exporter
            from shellspan.session import _user_name

            self.exporter = Exporter(self.config, subject=_user_name())
            self.exporter.start()
        self._load_state()
        tmp = os.path.join(self.dir, f".agent.pid.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, os.path.join(self.dir, "agent.pid"))
        return True

    # --- records -----------------------------------------------------------------------------

    def feed(self, data: bytes, buffer: bytearray) -> None:
        buffer.extend(data)
        while True:
            i = buffer.find(b"\0")
            if i < 0:
                break
            raw = bytes(buffer[:i])
            del buffer[: i + 1]
            try:
                self.handle(raw.decode("utf-8", "replace"))
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the agent
                self.log(f"bad record {raw[:80]!r}: {exc!r}")

    def handle(self, record: str) -> None:
        kind = record[:1]
        n = FIELDS.get(kind)
        if n is None:
            return
        f = record.split(SEP, n - 1)
        if len(f) < n:
            return
        self.records += 1
        if self.config.debug:
            self.log(f"record {record[:200]!r}")
        try:
            pid = int(f[1])
        except ValueError:
            return
        if kind == "T":  # a piece of a long record
            self.partial[pid] = self.partial.get(pid, "") + f[2]
            return
        if kind == "L":  # its last piece: handle the whole record
            whole = self.partial.pop(pid, "") + f[2]
            if whole[:1] not in ("T", "L"):
                self.handle(whole)
            return
        self.dirty = True
        if kind == "S":
            self._start(f)
            return
        sess = self.sessions.get(f[2]) or self._adopt(pid, f[2])
        if sess is None:
            return
        sess.last_seen = time.time()
        if kind == "C":
            self._command(sess, seq=f[3], span=f[4], start=f[5], end=f[6], status=f[7],
                          pipestatus=f[8], cwd=f[9], flags=f[10], text=f[11])
        elif kind == "B":
            sess.pending = {"seq": f[3], "span": f[4], "start": f[5], "cwd": f[6],
                            "flags": f[7], "text": f[8]}
        elif kind == "E":
            p = sess.pending
            if p is not None and p["seq"] == f[3]:
                sess.pending = None
                self._command(sess, seq=p["seq"], span=p["span"], start=p["start"], end=f[4],
                              status=f[5], pipestatus=f[6], cwd=p["cwd"], flags=p["flags"],
                              text=p["text"])
        elif kind == "X":
            try:
                code: int | None = int(f[4])
            except ValueError:
                code = None
            self.close(sess, f[5] or "exit", code, _us_to_ns(f[3], time.time_ns()))

    def _start(self, f: list[str]) -> None:
        (_, pid_s, sid, start_us, shell, root, ppid, shlvl, ptp, user, ssh, version,
         cwd) = f
        if not re.fullmatch(r"[0-9a-f]{32}", sid) or sid in self.sessions or sid in self.closed:
            return
        try:
            root_id = bytes.fromhex(root) if len(root) == 16 else new_span_id()
        except ValueError:
            root_id = new_span_id()
        pid = int(pid_s)
        sess = ShellSession(sid, pid, shell or "sh", _us_to_ns(start_us, time.time_ns()),
                            root_id)
        self._fill(sess, ppid=ppid, user=user, ssh=ssh, cwd=cwd, shlvl=shlvl, ptp=ptp,
                   version=version)
        self._register(sess)
        self._emit_start(sess)

    def _fill(self, sess: ShellSession, *, ppid: str = "", user: str = "", ssh: str = "",
              cwd: str = "", shlvl: str = "", ptp: str = "", version: str = "") -> None:
        st = _proc_stat(sess.pid)
        sess.proc_start = st[1] if st else None
        sess.tty = _tty_of(sess.pid)
        if not user:
            from shellspan.session import _user_name

            user = _user_name()
        try:
            parent_pid = int(ppid)
        except ValueError:
            parent_pid = 0
        sess.cwd = cwd
        attrs = spans.identity(
            session_id=sess.sid, shell_type=sess.shell, user=user, host=self.host, pid=sess.pid,
            parent_pid=parent_pid, tty=sess.tty,
            client_address=ssh.split()[0] if ssh.split() else "", cwd=cwd)
        if shlvl.isdigit():
            attrs[sc.SHELL_LEVEL] = int(shlvl)
        if version:
            attrs[sc.SHELL_VERSION] = version
        parent = parse_traceparent(ptp) if ptp else None
        if parent:
            spans.parent_link(attrs, sess.links, parent[0], parent[1])
        sess.attributes = attrs

    def _register(self, sess: ShellSession) -> None:
        old = self.by_pid.get(sess.pid)
        if old is not None and old is not sess:  # the pid was reused: the old shell is gone
            self.close(old, "orphaned", None, time.time_ns())
        self.sessions[sess.sid] = sess
        self.by_pid[sess.pid] = sess
        sess.next_heartbeat = time.monotonic() + self.heartbeat_s
        self.dirty = True

    def _adopt(self, pid: int, sid: str) -> ShellSession | None:
        """A record of a session this agent never saw start (it started before the agent)."""
        if not re.fullmatch(r"[0-9a-f]{32}", sid) or sid in self.closed:
            return None
        self.log(f"adopting session {sid} of pid {pid}")
        st = _proc_stat(pid)
        start_ns = time.time_ns()
        if st is not None and self._boot:
            start_ns = int((self._boot + st[1] / CLK_TCK) * 1e9)
        shell = "sh"
        try:
            with open(f"/proc/{pid}/comm") as fh:
                shell = fh.read().strip().lstrip("-") or "sh"
        except OSError:
            pass
        sess = ShellSession(sid, pid, shell, start_ns, new_span_id())
        cwd = ""
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            pass
        self._fill(sess, cwd=cwd)
        sess.attributes[sc.SESSION_ADOPTED] = True
        self._register(sess)
        self._emit_start(sess)
        return sess

    def _emit_start(self, sess: ShellSession) -> None:
        self.emit(spans.start_span(sess.trace_id, sess.root, sess.attributes, sess.start_ns,
                                   time.time_ns()), now=True)

    def _command(self, sess: ShellSession, *, seq: str, span: str, start: str, end: str,
                 status: str, pipestatus: str, cwd: str, flags: str, text: str) -> None:
        now = time.time_ns()
        end_ns = _us_to_ns(end, now)
        start_ns = _us_to_ns(start, end_ns) if start not in ("", "0") else end_ns
        try:
            code = int(status)
        except ValueError:
            code = 0
        redacted = False
        if flags == "h":
            text = fc_text(text)
        elif flags == "d":
            text = sess.last_text
        if flags in ("u", "s") or (flags == "d" and not text):
            if self.ignorespace == "drop":
                return
            text, redacted, name = MARK, True, ""
        else:
            sess.last_text = text
            text, redacted = self.redactor.redact(text)
            name = command_name(text)
        try:
            span_id = bytes.fromhex(span) if len(span) == 16 else new_span_id()
        except ValueError:
            span_id = new_span_id()
        sess.command_count += 1
        try:
            seq_n = int(seq)
        except ValueError:
            seq_n = sess.command_count
        pipes = [int(p) for p in pipestatus.split() if p.lstrip("-").isdigit()]
        if spans.command_failed(code):
            sess.failed_count += 1
        sess.cwd = cwd or sess.cwd
        self.emit(spans.command_span(
            sess.trace_id, sess.root, span_id, seq=seq_n, text=text, name=name, cwd=cwd,
            start_ns=start_ns, end_ns=end_ns, exit_code=code, redacted=redacted,
            extra={sc.COMMAND_PIPESTATUS: pipes} if pipes else None))

    def close(self, sess: ShellSession, reason: str, code: int | None, end_ns: int) -> None:
        if sess.pending is not None:  # zsh: the command that was running when the shell died
            p, sess.pending = sess.pending, None
            self._command(sess, seq=p["seq"], span=p["span"], start=p["start"],
                          end=str(end_ns // 1000), status=str(code if code is not None else -1),
                          pipestatus="", cwd=p["cwd"], flags=p["flags"], text=p["text"])
        self.emit(spans.session_span(
            sess.trace_id, sess.root, sess.attributes, start_ns=sess.start_ns, end_ns=end_ns,
            reason=reason, exit_code=code, command_count=sess.command_count,
            failed_count=sess.failed_count, last_cwd=sess.cwd, links=sess.links), now=True)
        if self.config.debug:
            self.log(f"closing session {sess.sid} ({reason}, {code})")
        self.sessions.pop(sess.sid, None)
        self.closed[sess.sid] = time.monotonic()
        if len(self.closed) > 1000:
            for sid in sorted(self.closed, key=self.closed.get)[:500]:
                del self.closed[sid]
        if self.by_pid.get(sess.pid) is sess:
            del self.by_pid[sess.pid]
        self.partial.pop(sess.pid, None)
        try:
            os.unlink(os.path.join(self.dir, f"h.{sess.pid}"))
        except OSError:
            pass
        self.dirty = True

    def emit(self, span: SpanData, *, now: bool = False) -> None:
        if not self.batch:
            self.batch_due = time.monotonic() + self.batch_s
        self.batch.append(span)
        if now or self.batch_s <= 0 or len(self.batch) >= 200:
            self.flush_batch()

    def flush_batch(self) -> None:
        batch, self.batch = self.batch, []
        for span in batch:
            self.exporter.submit(span)

    # --- watching ----------------------------------------------------------------------------

    def read_spilled(self) -> None:
        """Records a shell left in ``q.PID`` because it exited before the agent was up."""
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith("q.")]
        except OSError:
            return
        for name in names:
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                os.unlink(path)
            except OSError:
                continue
            self.feed(data, bytearray())

    def watch(self) -> None:
        self.read_spilled()
        now = time.monotonic()
        for sess in list(self.sessions.values()):
            st = _proc_stat(sess.pid)
            gone = (not _pid_alive(sess.pid)
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
                                               now_ns=time.time_ns()))

    # --- state file --------------------------------------------------------------------------

    def state(self) -> dict:
        exp = self.exporter.status()
        return {
            "pid": os.getpid(), "started": self.started, "updated": time.time(),
            "endpoint": self.config.endpoint, "spool_dir": self.config.spool_dir,
            "spooled_entries": exp.spooled_entries, "spooled_bytes": exp.spooled_bytes,
            "records": self.records, "last_export_ok": exp.last_success,
            "last_error": exp.last_error, "breaker_open": exp.breaker_open,
            "breaker": exp.breaker, "stats": exp.stats,
            "sessions": [{"session_id": s.sid, "pid": s.pid, "shell": s.shell,
                          "start_ns": s.start_ns, "root": s.root.hex(),
                          "proc_start": s.proc_start, "commands": s.command_count,
                          "failed": s.failed_count, "cwd": s.cwd, "tty": s.tty,
                          "attributes": s.attributes, "last_seen": s.last_seen}
                         for s in self.sessions.values()],
        }

    def save_state(self) -> None:
        path = os.path.join(self.dir, "state.json")
        tmp = path + f".{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.state(), f)
            os.rename(tmp, path)
        except OSError as exc:
            self.log(f"cannot write state: {exc!r}")
        self.dirty = False

    def _load_state(self) -> None:
        """Take over the sessions a previous agent was watching (it crashed or was restarted)."""
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                old = json.load(f)
        except (OSError, ValueError):
            return
        for s in old.get("sessions", []):
            try:
                sess = ShellSession(s["session_id"], int(s["pid"]), s["shell"], int(s["start_ns"]),
                                    bytes.fromhex(s["root"]))
            except (KeyError, ValueError, TypeError):
                continue
            sess.proc_start = s.get("proc_start")
            sess.command_count = int(s.get("commands", 0))
            sess.failed_count = int(s.get("failed", 0))
            sess.cwd, sess.tty = s.get("cwd", ""), s.get("tty", "")
            sess.attributes = s.get("attributes", {})
            self._register(sess)

    # --- main loop ---------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} shellspan-agent: {msg}\n")
        sys.stderr.flush()

    def stop(self, *_args) -> None:
        self._stop = True

    def drain(self, buffer: bytearray) -> None:
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
            self.feed(data, buffer)

    def run(self) -> int:
        import select

        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        buffer = bytearray()
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
                self.drain(buffer)
                # Read at most every read_pause seconds: the pipe holds what comes meanwhile,
                # and the shells do not pay for the agent waking up at every record.
                time.sleep(self.read_pause)
            now = time.monotonic()
            if self.batch and now >= self.batch_due:
                self.flush_batch()
            if now >= next_watch:
                next_watch = now + self.watch_s
                self.drain(buffer)  # a shell's exit record comes before its pid is found gone
                self.watch()
                if self.sessions:
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
        self.flush_batch()
        self.save_state()
        try:
            pidfile = os.path.join(self.dir, "agent.pid")
            with open(pidfile) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(pidfile)
        except OSError:
            pass
        if self.exporter is not None and hasattr(self.exporter, "flush"):
            self.exporter.flush(2.0)
        self.log("stopped")


def _daemonize(log_path: str) -> None:
    """Detach from the shell that started us: new session, no terminal, output to the log."""
    # Ignored first: if our parent leads the terminal's session and exits (or the terminal
    # closes) before setsid() below, the kernel sends SIGHUP to this process group.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        if os.path.getsize(log_path) > 1024 * 1024:
            os.replace(log_path, log_path + ".1")
    except OSError:
        pass
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def main(args: list[str]) -> int:
    """``shellspan agent [--daemon]``: run the agent (in the foreground unless --daemon);
    ``shellspan agent stop``: stop the running agent."""
    if args[:1] == ["stop"]:
        return stop_agent()
    daemon = "--daemon" in args
    d = runtime_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode):
        sys.stderr.write(f"shellspan agent: {d} is not a directory owned by this user\n")
        return 1
    if daemon:
        _daemonize(os.path.join(d, "agent.log"))
    try:  # a background helper: never compete with the interactive shells for the CPU
        os.nice(int(_env_float(os.environ, "SHELLSPAN_AGENT_NICE", 10)))
    except (OSError, AttributeError):
        pass
    agent = Agent()
    try:
        if not agent.prepare():
            return 0  # another agent serves this user
    except Exception as exc:  # noqa: BLE001
        agent.log(f"cannot start: {exc!r}")
        return 1
    return agent.run()


def read_pid(d: str | None = None) -> int | None:
    d = d or runtime_dir()
    try:
        with open(os.path.join(d, "agent.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def stop_agent(d: str | None = None, timeout: float = 5.0) -> int:
    pid = read_pid(d)
    if pid is None:
        print("agent: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    print(f"agent: stopped (pid {pid})")
    return 0


def print_status(doctor: bool = False, env: dict[str, str] | None = None) -> int:
    """The bash/zsh part of ``shellspan status`` / ``doctor``: hook, agent, export, spool."""
    env = dict(os.environ if env is None else env)
    d = runtime_dir(env)
    problems: list[str] = []
    pid = read_pid(d)
    state: dict = {}
    try:
        with open(os.path.join(d, "state.json")) as f:
            state = json.load(f)
    except (OSError, ValueError):
        pass
    sid = env.get("SHELLSPAN_SESSION_ID", "")
    shell_pid = os.getppid()
    mine = [s for s in state.get("sessions", []) if s.get("session_id") == sid]
    print(f"runtime dir: {d}")
    if not sid:
        print("hook:        not active in this shell (add `eval \"$(shellspan init bash)\"` or "
              "the zsh equivalent to your rc file)")
    elif mine and int(mine[0].get("pid", 0)) == shell_pid:
        s = mine[0]
        print(f"hook:        active in this {s.get('shell')} (pid {shell_pid}, session {sid}, "
              f"{s.get('commands', 0)} commands)")
    elif mine:
        print(f"hook:        active in the parent shell (pid {mine[0].get('pid')}, session {sid});"
              " this process's parent is not that shell")
    else:
        print(f"hook:        session {sid} is not known to the agent (agent down or restarted;"
              " it is adopted at the next command)")
        if pid is not None:
            problems.append("the agent does not know this session yet")
    if pid is None:
        print("agent:       not running (it starts with the next interactive shell; "
              "`shellspan agent --daemon` starts it now)")
        problems.append("agent not running")
    else:
        age = time.time() - float(state.get("updated", 0) or 0)
        print(f"agent:       running (pid {pid}, {len(state.get('sessions', []))} live sessions,"
              f" state updated {age:.0f}s ago)")
    endpoint = state.get("endpoint") or Config(env).endpoint
    print(f"export to:   {endpoint}")
    spool_dir = state.get("spool_dir") or Config(env).spool_dir
    from shellspan.spool import Spool

    n, size = Spool(spool_dir).size()
    print(f"spooled:     {n} requests ({size} bytes) in {spool_dir}")
    last = float(state.get("last_export_ok", 0) or 0)
    if last:
        print(f"last export: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last))}"
              f" ({time.time() - last:.0f}s ago)")
    else:
        print("last export: none by this agent yet")
    if state.get("last_error"):
        print(f"last error:  {state['last_error']}")
    if n and pid is not None and state.get("breaker_open"):
        problems.append("the endpoint is failing; spans are being spooled")
    if doctor:
        log = os.path.join(d, "agent.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                tail = f.readlines()[-5:]
            print("agent log:   " + "             ".join(tail).rstrip())
        print("problems:    " + ("; ".join(problems) if problems else "none found"))
        return 1 if problems else 0
    return 0
