"""``shellspan record [--input] [-- COMMAND ...]``: run a command in a pseudo-terminal and record
what its terminal showed.

The recorder sits between the user's terminal and a new pseudo-terminal in which COMMAND (the
user's login shell by default) runs: keystrokes go in and output comes out untouched (the outer
terminal in raw mode, restored on every way out; the window size copied at start and on every
SIGWINCH; job control, full-screen programs and the command's exit status as without it). It
keeps a copy of the output (and of the input with ``--input``, never while the program has
turned echo off, so passwords typed at prompts are not kept), cut into chunks, and hands the
chunks to the user's agent over the local channel (``channel``), which redacts, encodes and
exports them. This process only relays bytes and appends to a buffer: it never encodes, never
waits on the network, and has no thread, so nothing competes with the relay for the GIL.

Shells under the recorder mark where commands start and the prompt comes back (``marks``); the
marks are removed from the stream and say which session and command the output that follows
belongs to (a stack of sessions for nested shells: a chunk belongs to each session on the stack,
the innermost one's command and the outer ones' commands that started it). The recorder picks
the session id of the shell it starts (``SHELLSPAN_RECORDER_SESSION``), so output before the
shell's first mark (its start-up) already belongs to that session; a command that is no
instrumented shell gets its session spans from the agent when it ends.

Inside a recorded session (``SHELLSPAN_RECORDER`` names a live recorder) ``shellspan record``
just runs the command: a session is never recorded twice.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import time

from shellspan.otlp import new_span_id, new_trace_id
from shellspan.recording import channel, marks
from shellspan.recording.limits import DROP, RECORD, Budget, Limits

USAGE = "usage: shellspan record [--input] [-- COMMAND [ARGS...]]\n"
READ_SIZE = 65536
COALESCE_NS = 10_000_000  # output read within 10 ms of a chunk's first byte joins that chunk
CHUNK_MAX = 65536
SEND_BYTES = 32768  # hand off to the agent once this much waits...
SEND_AFTER_S = 0.05  # ...or the oldest byte waiting is this old
BUFFER_MAX = 8 * 1024 * 1024  # kept for the agent at most (beyond: dropped, with a marker)
TAIL_HOLD_S = 0.005  # a possible start of a mark at the end of a read waits this long at most
RECONNECT_S = 0.5
AGENT_START_S = 5.0  # between attempts to start the agent
EXIT_HANDOFF_S = 3.0  # at exit, how long to wait for the agent to take the rest
DRAIN_IDLE_S = 0.05  # after the command exits: output quiet this long means it is over...
DRAIN_MAX_S = 1.0  # ...and a background job still writing is cut off after this long
HANGUP_WAIT_S = 10.0
TO_CHILD_MAX = 1024 * 1024  # keystrokes not yet taken by the program (beyond: stop reading)
TIOCSCTTY = getattr(termios, "TIOCSCTTY", 0x540E)
_WINSZ = struct.Struct("HHHH")
_CATCH = (signal.SIGWINCH, signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGCONT,
          signal.SIGTSTP, signal.SIGINT, signal.SIGQUIT)
_RESET_IN_CHILD = (signal.SIGPIPE, signal.SIGXFSZ, *_CATCH, signal.SIGTTIN, signal.SIGTTOU)


def _noop(_sig: int, _frame: object) -> None:
    """Signals only wake the loop (``set_wakeup_fd`` writes their numbers to a pipe)."""


# --- who runs us ---------------------------------------------------------------------------------

def process_start(pid: int) -> str:
    """The start time of a process (clock ticks since boot, as /proc says; "" if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
        return data[data.rfind(")") + 2:].split()[19]
    except (OSError, IndexError):
        return ""


def recorder_alive(value: str) -> bool:
    """Whether ``SHELLSPAN_RECORDER`` (``PID:START``) names a recorder that still runs."""
    pid, _, start = value.partition(":")
    if not pid.isdigit():
        return False
    if start and os.path.isdir("/proc/self"):
        return process_start(int(pid)) == start
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def login_shell() -> str:
    """``$SHELL``, else the password database's shell, else /bin/sh."""
    shell = os.environ.get("SHELL", "")
    if not shell:
        try:
            import pwd

            shell = pwd.getpwuid(os.getuid()).pw_shell
        except (ImportError, KeyError):
            shell = ""
    return shell or "/bin/sh"


# --- terminals -----------------------------------------------------------------------------------

def raw_attrs(attrs: list) -> list:
    """``cfmakeraw``: no echo, no line editing, no signals from keys, no output processing."""
    new = list(attrs)
    new[6] = list(attrs[6])
    new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    new[1] &= ~termios.OPOST
    new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    new[2] = (new[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    new[6][termios.VMIN], new[6][termios.VTIME] = 1, 0
    return new


def window_size(fd: int) -> bytes | None:
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * _WINSZ.size)
    except OSError:
        return None


def size_text(winsz: bytes | None) -> str:
    rows, cols, _x, _y = _WINSZ.unpack(winsz) if winsz else (24, 80, 0, 0)
    return f"{cols or 80}x{rows or 24}"


def short_slices() -> None:
    """Ask the scheduler for short time slices (Linux EEVDF, ``sched_attr.sched_runtime``):
    a relay that wakes for every keystroke is then run sooner when the machine is busy. Only
    this process; best effort (an older kernel or a refusal changes nothing)."""
    try:
        us = float(os.environ.get("SHELLSPAN_RECORD_SLICE_US", "100"))
    except ValueError:
        return
    if us <= 0 or not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        attr = struct.pack("<IIQiIQQQ", 48, 0, 0, os.getpriority(os.PRIO_PROCESS, 0), 0,
                           int(us * 1000), 0, 0)
        libc.syscall(314, 0, ctypes.create_string_buffer(attr), 0)  # sched_setattr
    except (OSError, AttributeError, ValueError):
        pass


# --- the recorder --------------------------------------------------------------------------------

class Target:
    """A session on the stack: its index on the channel, ids, current span and next seq."""

    __slots__ = ("index", "trace_id", "root", "span", "seq", "named")

    def __init__(self, index: int, trace_id: bytes, root: bytes, span: bytes) -> None:
        self.index, self.trace_id, self.root, self.span = index, trace_id, root, span
        self.seq = 0
        self.named = False  # a mark has named this session (a shell runs it)


class Recorder:
    def __init__(self, command: list[str], *, record_input: bool = False,
                 limits: Limits | None = None, runtime_dir: str = "") -> None:
        self.command = command
        self.record_input = record_input
        self.budget = Budget(limits or Limits())
        self.runtime_dir = runtime_dir
        self.sock_path = os.path.join(runtime_dir, channel.SOCKET) if runtime_dir else ""
        self.in_fd, self.out_fd = 0, 1
        self.in_tty = os.isatty(0)
        self.saved: list | None = None
        self.master = -1
        self.child = 0
        self.status: int | None = None
        self.scanner = marks.MarkScanner()
        self.targets: list[Target] = []  # every session seen, by index
        self.stack: list[Target] = []
        self.stack_version = 0
        # Hand-off to the agent: unsent messages (the first maybe partly sent: ``cursor``).
        self.out = bytearray()
        self.cursor = 0
        self.out_since = 0.0
        self.last_off = -1  # where the last message starts in ``out`` (-1: none to extend)
        self.last_time = 0
        self.last_version = -1
        self.sock: socket.socket | None = None
        self.next_connect = 0.0
        self.next_agent_start = 0.0
        self.dropped = 0  # bytes not recorded since the last marker
        self.lost = 0  # bytes that never reached the agent
        self.paused_until = 0.0  # delay: no reading of output until then
        self.tail_since = 0.0
        self.to_child = bytearray()
        self.stdin_open = True
        self.hangup = False
        self.exited_at = 0.0  # when the command ended (its output is drained a moment longer)
        self.last_output = 0.0
        self.master_open = True
        self.wake_r = self.wake_w = -1
        self.poller = select.poll()
        self.start_ns = time.time_ns()
        self.tty_name = ""

    # --- set-up --------------------------------------------------------------------------------

    def spawn(self) -> None:
        master, slave = os.openpty()
        self.master, self.tty_name = master, os.ttyname(slave)
        if self.in_tty:
            try:
                termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(self.in_fd))
            except termios.error:
                pass
        winsz = window_size(self.in_fd) or _WINSZ.pack(24, 80, 0, 0)
        fcntl.ioctl(master, termios.TIOCSWINSZ, winsz)
        trace_id, root = new_trace_id(), new_span_id()
        env = dict(os.environ)
        env[marks.ENV_RECORDER] = f"{os.getpid()}:{process_start(os.getpid())}"
        env[marks.ENV_SESSION] = f"{trace_id.hex()}-{root.hex()}"
        try:
            self.child = os.posix_spawnp(
                self.command[0], self.command, env,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, self.tty_name, os.O_RDWR, 0),
                              (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)],
                setsid=True, setsigdef=_RESET_IN_CHILD, setsigmask=())
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        first = Target(0, trace_id, root, root)
        self.targets.append(first)
        self.stack.append(first)
        self.out += channel.session(0, trace_id, root, False)
        self._resize_frame([first], size_text(winsz))

    def hello(self) -> bytes:
        return channel.hello({
            "version": 1, "pid": os.getpid(), "child": self.child, "command": self.command,
            "term": os.environ.get("TERM", ""), "tty": self.tty_name,
            "start_ns": self.start_ns, "input": self.record_input})

    def install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in _CATCH:
            signal.signal(sig, _noop)

    def enter_raw(self) -> None:
        if self.in_tty:
            if self.saved is None:
                self.saved = termios.tcgetattr(self.in_fd)
            termios.tcsetattr(self.in_fd, termios.TCSADRAIN, raw_attrs(self.saved))

    def restore(self) -> None:
        if self.saved is not None:
            try:
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Relay until the command has ended; returns its exit status."""
        self.install_signals()
        self.spawn()
        short_slices()
        self.connect(time.monotonic())
        import gc

        gc.disable()  # no collector pauses in the relay: it makes no reference cycles
        try:
            self.enter_raw()
            self.loop()
        finally:
            self.restore()
        self.finish()
        return self.status if self.status is not None else 129

    def loop(self) -> None:
        poller = self.poller
        master, in_fd, wake = self.master, self.in_fd, self.wake_r
        poller.register(wake, select.POLLIN)
        poller.register(master, select.POLLIN)
        if self.stdin_open:
            poller.register(in_fd, select.POLLIN)
        while True:
            now = time.monotonic()
            if self.exited_at and (now - self.last_output > DRAIN_IDLE_S
                                   or now - self.exited_at > DRAIN_MAX_S) \
                    or not self.master_open and self.status is not None:
                return
            timeout = self.timeout(now)
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                events = []
            for fd, ev in events:
                if fd == master:
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        self.on_output()  # after a hang-up: what is left, then EIO
                    if ev & select.POLLOUT and self.master_open:
                        self.feed_child()
                elif fd == in_fd:
                    self.on_input()
                elif fd == wake:
                    self.on_signals()
                elif self.sock is not None and fd == self.sock.fileno():
                    if ev & (select.POLLHUP | select.POLLERR):
                        self.disconnect()  # the agent went away: reconnect (or start one)
                    else:
                        self.send(force=True)
            if self.hangup:
                self.hang_up()
                return
            now = time.monotonic()
            if self.scanner.pending and now - self.tail_since >= TAIL_HOLD_S:
                self.emit(self.scanner.flush())
            if self.paused_until and now >= self.paused_until:
                self.paused_until = 0.0
                self.watch_master()
            if self.out and len(self.out) > self.cursor:
                if self.sock is None:
                    if now >= self.next_connect:
                        self.connect(now)
                elif (len(self.out) - self.cursor >= SEND_BYTES
                      or now - self.out_since >= SEND_AFTER_S):
                    self.send()

    def timeout(self, now: float) -> int:
        """Milliseconds until something is due (-1: nothing; wait for input or output)."""
        due = []
        if self.out and len(self.out) > self.cursor:
            due.append(self.next_connect if self.sock is None else self.out_since + SEND_AFTER_S)
        if self.scanner.pending:
            due.append(self.tail_since + TAIL_HOLD_S)
        if self.paused_until:
            due.append(self.paused_until)
        if self.exited_at:
            due.append(min(self.last_output + DRAIN_IDLE_S, self.exited_at + DRAIN_MAX_S))
        if not due:
            return -1
        return max(int((min(due) - now) * 1000) + 1, 0)

    def watch_master(self) -> None:
        if not self.master_open:
            return
        mask = 0 if self.paused_until else select.POLLIN
        if self.to_child:
            mask |= select.POLLOUT
        self.poller.modify(self.master, mask or select.POLLHUP)

    # --- output --------------------------------------------------------------------------------

    def read_output(self) -> bytes | None:
        """What the program has written, up to ``READ_SIZE`` (None: nothing yet). A pty hands
        out a few kilobytes per read: reading on while more is ready means one write to the
        user's terminal and one chunk for many reads when output streams."""
        master = self.master
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:  # EIO: every holder of the terminal closed it
            return b""
        if not data:
            return data
        parts = [data]
        size = len(data)
        while size < READ_SIZE:
            try:
                more = os.read(master, READ_SIZE - size)
            except OSError:  # nothing more now (or EIO, which the next read reports)
                break
            if not more:
                break
            parts.append(more)
            size += len(more)
        return data if len(parts) == 1 else b"".join(parts)

    def on_output(self) -> None:
        data = self.read_output()
        if data is None:
            return
        if not data:
            self.output_closed()
            return
        if self.exited_at:
            self.last_output = time.monotonic()
        scanner = self.scanner
        had_tail = scanner.pending
        if not had_tail and marks.PREFIX[:1] not in data[-len(marks.PREFIX):] \
                and marks.PREFIX not in data:
            self.emit(data)  # the common case: no mark, nothing held back
            return
        for part in scanner.feed(data):
            if isinstance(part, bytes):
                self.emit(part)
            else:
                self.on_mark(*part)
        if scanner.pending and not had_tail:
            self.tail_since = time.monotonic()

    def emit(self, data: bytes) -> None:
        """Show ``data`` to the user and keep a copy for the recording."""
        if not data:
            return
        self.write_out(data)
        verdict = self.budget.take(len(data))
        if verdict == DROP:
            self.dropped += len(data)
            return
        if verdict != RECORD:  # delay: recorded, and the output waits a moment
            self.paused_until = time.monotonic() + verdict
            self.watch_master()
        self.record(channel.OUTPUT, data)

    def write_out(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.out_fd, view):]
            except BlockingIOError:
                select.select([], [self.out_fd], [], 1.0)
            except InterruptedError:
                continue
            except OSError:  # the user's terminal is gone
                self.hangup = True
                return

    def output_closed(self) -> None:
        if self.scanner.pending:
            self.emit(self.scanner.flush())
        if self.master_open:
            self.master_open = False
            try:
                self.poller.unregister(self.master)
            except KeyError:
                pass
        if self.status is None:
            self.reap()

    # --- input ---------------------------------------------------------------------------------

    def on_input(self) -> None:
        try:
            data = os.read(self.in_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal hung up
            self.hangup = True
            return
        if not data:
            if self.in_tty:
                self.hangup = True
                return
            self.stdin_open = False  # a pipe or file ended: the program reads end-of-file
            self.poller.unregister(self.in_fd)
            try:
                data = bytes([termios.tcgetattr(self.master)[6][termios.VEOF][0]])
            except (termios.error, IndexError, TypeError):
                data = b"\x04"
        elif self.record_input and self.echo_on():
            verdict = self.budget.take(len(data))
            if verdict == DROP:
                self.dropped += len(data)
            else:
                self.record(channel.INPUT, data)
        self.to_child += data
        self.feed_child()

    def echo_on(self) -> bool:
        """Whether the program's terminal echoes what is typed (the master's termios are the
        terminal's: Linux answers for the slave). No echo: a password prompt, or a program
        that draws what it wants shown itself; nothing typed is kept then."""
        try:
            return bool(termios.tcgetattr(self.master)[3] & termios.ECHO)
        except termios.error:
            return False

    def feed_child(self) -> None:
        if self.to_child and self.master_open:
            try:
                n = os.write(self.master, self.to_child)
                del self.to_child[:n]
            except BlockingIOError:
                pass
            except OSError:
                self.to_child.clear()
        self.watch_master()
        if self.stdin_open:  # stop reading keys the program does not take (it is busy)
            self.poller.modify(self.in_fd, select.POLLIN
                               if len(self.to_child) < TO_CHILD_MAX else 0)

    # --- signals -------------------------------------------------------------------------------

    def on_signals(self) -> None:
        try:
            got = os.read(self.wake_r, 512)
        except OSError:
            return
        for sig in set(got):
            if sig == signal.SIGWINCH:
                self.sync_size()
            elif sig == signal.SIGCHLD:
                self.reap()
            elif sig in (signal.SIGHUP, signal.SIGTERM):
                self.hangup = True
            elif sig == signal.SIGTSTP:
                self.restore()
                os.kill(os.getpid(), signal.SIGSTOP)
            elif sig == signal.SIGCONT:
                self.enter_raw()
                self.sync_size()

    def sync_size(self) -> None:
        winsz = window_size(self.in_fd)
        if winsz is None or not self.master_open:
            return
        try:
            if winsz == fcntl.ioctl(self.master, termios.TIOCGWINSZ, b"\0" * _WINSZ.size):
                return
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, winsz)
        except OSError:
            return
        self._resize_frame(self.stack, size_text(winsz))

    def reap(self) -> None:
        """Collect ended children: the command (its exit status) and an agent's first
        process (it detaches and exits at once)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                code = os.waitstatus_to_exitcode(status)
                self.status = 128 - code if code < 0 else code
                self.exited_at = self.last_output = time.monotonic()

    def hang_up(self) -> None:
        """The user's terminal went away (or we were told to stop): hang up the program's
        terminal as a terminal emulator would (its session gets SIGHUP) and wait for it."""
        if self.master_open:
            self.master_open = False
            os.close(self.master)
        deadline = time.monotonic() + HANGUP_WAIT_S
        while self.status is None and time.monotonic() < deadline:
            self.reap()
            if self.status is None:
                time.sleep(0.01)
        if self.status is None:
            self.status = 129

    # --- recording -----------------------------------------------------------------------------

    def on_mark(self, kind: str, session_id: str, span_id: str) -> None:
        """A shell says which session and span the output that follows belongs to."""
        trace_id, span = bytes.fromhex(session_id), bytes.fromhex(span_id)
        for pos, target in enumerate(self.stack):
            if target.trace_id == trace_id:
                del self.stack[pos + 1:]  # the nested sessions above it have ended
                target.span = span
                if not target.named:  # the shell took the session the recorder chose
                    target.named = True
                    self.queue(channel.session(target.index, trace_id, target.root, True))
                break
        else:
            target = Target(len(self.targets), trace_id,
                            span if kind == marks.PROMPT else b"\0" * 8, span)
            target.named = True
            self.targets.append(target)
            self.stack.append(target)
            self.queue(channel.session(target.index, trace_id, target.root, True))
            winsz = window_size(self.master) if self.master_open else None
            self._resize_frame([target], size_text(winsz))
        self.stack_version += 1

    def record(self, kind: int, data: bytes) -> None:
        """Append a chunk for the agent (or, for output shortly after output of the same
        sessions and spans, extend the last chunk)."""
        now_ns = time.time_ns()
        out = self.out
        if (kind == channel.OUTPUT and self.last_off >= self.cursor
                and self.last_version == self.stack_version
                and now_ns - self.last_time < COALESCE_NS
                and len(out) - self.last_off + len(data) < CHUNK_MAX):
            channel.extend_length(out, self.last_off, len(data))
            out += data
            return
        if len(out) > BUFFER_MAX:
            self.dropped += len(data)
            return
        if self.dropped:
            self._dropped_frame(now_ns)
        targets = b"".join([channel.TARGET.pack(t.index, t.seq + 1, t.span) for t in self.stack])
        for t in self.stack:
            t.seq += 1
        if not out:
            self.out_since = time.monotonic()
        self.last_off = len(out) if kind == channel.OUTPUT else -1
        self.last_time, self.last_version = now_ns, self.stack_version
        out += channel.data_head(kind, now_ns, targets, len(self.stack), len(data))
        out += data

    def _dropped_frame(self, now_ns: int) -> None:
        count, self.dropped = self.dropped, 0
        self._frame(channel.DROPPED, now_ns, self.stack, str(count).encode())

    def _resize_frame(self, targets: list[Target], text: str) -> None:
        self._frame(channel.RESIZE, time.time_ns(), targets, text.encode())

    def _frame(self, kind: int, now_ns: int, targets: list[Target], data: bytes) -> None:
        """A message that is never dropped (resizes, drop markers)."""
        packed = b"".join([channel.TARGET.pack(t.index, t.seq + 1, t.span) for t in targets])
        for t in targets:
            t.seq += 1
        self.queue(channel.data_head(kind, now_ns, packed, len(targets), len(data)) + data)

    def queue(self, message: bytes) -> None:
        if not self.out:
            self.out_since = time.monotonic()
        self.last_off = -1
        self.out += message

    # --- the channel ---------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Open the channel to the agent; start the agent when none listens."""
        self.next_connect = now + RECONNECT_S
        if not self.sock_path:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self.sock_path)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED) and now >= self.next_agent_start:
                self.next_agent_start = now + AGENT_START_S
                start_agent(self.runtime_dir)
            return
        self.sock = sock
        # A fresh connection: say who we are and which sessions the messages name; a message
        # cut by the old connection goes again whole.
        prologue = bytearray(self.hello())
        for t in self.targets:
            prologue += channel.session(t.index, t.trace_id, t.root, t.named)
        self.out[:0] = prologue
        if self.last_off >= 0:
            self.last_off += len(prologue)
        self.cursor = 0
        self.poller.register(sock.fileno(), 0)
        self.send(force=True)

    def send(self, force: bool = False) -> None:
        sock = self.sock
        if sock is None:
            return
        out = self.out
        try:
            while len(out) > self.cursor:
                n = sock.send(memoryview(out)[self.cursor:self.cursor + 1024 * 1024])
                self.cursor += n
        except BlockingIOError:
            self.poller.modify(sock.fileno(), select.POLLOUT)
        except OSError:
            self.disconnect()
            return
        else:
            self.poller.modify(sock.fileno(), 0)
        # Whole messages sent leave the buffer.
        done = 0
        while len(out) - done >= channel.HEADER.size:
            _kind, length = channel.HEADER.unpack_from(out, done)
            size = channel.HEADER.size + length
            if self.cursor - done < size:
                break
            done += size
        if done:
            del out[:done]
            self.cursor -= done
            self.last_off = self.last_off - done if self.last_off >= done else -1
        if not out:
            self.out_since = 0.0
        else:
            self.out_since = time.monotonic()

    def disconnect(self) -> None:
        if self.sock is not None:
            try:
                self.poller.unregister(self.sock.fileno())
            except KeyError:
                pass
            self.sock.close()
            self.sock = None
        self.cursor = 0
        self.next_connect = time.monotonic() + RECONNECT_S

    def finish(self) -> None:
        """After the command: the last chunks and the end message go to the agent (waiting
        for it a few seconds at most); the program's terminal is closed."""
        if self.scanner.pending:
            self.emit(self.scanner.flush())
        if self.master_open:
            self.master_open = False
            os.close(self.master)
        if self.dropped:
            self._dropped_frame(time.time_ns())
        unnamed = [t.index for t in self.targets if not t.named]
        self.queue(channel.end({"status": self.status, "end_ns": time.time_ns(),
                                "unnamed": unnamed}))
        deadline = time.monotonic() + EXIT_HANDOFF_S
        while len(self.out) > self.cursor and time.monotonic() < deadline:
            if self.sock is None:
                now = time.monotonic()
                if now >= self.next_connect:
                    self.connect(now)
                if self.sock is None:
                    time.sleep(0.05)
                continue
            self.send(force=True)
            if len(self.out) > self.cursor:
                select.select([], [self.sock], [], 0.1)
        if self.sock is not None:
            self.sock.close()
        left = len(self.out) - self.cursor
        if left > 0:
            sys.stderr.write(f"shellspan record: the agent did not take the last {left} bytes "
                             "of the recording\n")


def start_agent(directory: str) -> None:
    """Start the user's agent as the hooks do (detached; it exits when another one runs)."""
    from shellspan.posix.hooks import shellspan_bin

    env = dict(os.environ, SHELLSPAN_RUNTIME_DIR=directory)
    env.pop(marks.ENV_RECORDER, None)
    env.pop(marks.ENV_SESSION, None)
    bin_path = shellspan_bin()
    try:
        os.posix_spawnp(bin_path, [bin_path, "agent", "--daemon"], env,
                        file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                      (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                      (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)],
                        setsid=True, setsigdef=_RESET_IN_CHILD, setsigmask=())
        # (it detaches and its first process exits at once: ``reap`` collects it)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    record_input = False
    args = list(argv)
    while args and args[0].startswith("-") and args[0] != "--":
        opt = args.pop(0)
        if opt == "--input":
            record_input = True
        elif opt in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        else:
            sys.stderr.write(f"shellspan record: unknown option {opt}\n{USAGE}")
            return 2
    if args[:1] == ["--"]:
        args.pop(0)
    command = args or [login_shell()]
    current = os.environ.get(marks.ENV_RECORDER, "")
    if current and recorder_alive(current):
        try:  # already recorded: run the command as it is
            os.execvp(command[0], command)
        except OSError as exc:
            sys.stderr.write(f"shellspan record: {command[0]}: {exc.strerror}\n")
            return 127
    try:
        limits = Limits.from_env(os.environ)
    except ValueError as exc:
        sys.stderr.write(f"shellspan record: {exc}\n")
        return 2
    from shellspan.posix import runtime

    choice = runtime.choose()
    if not choice.path:
        sys.stderr.write(f"shellspan record: no usable runtime directory ({choice.refused}); "
                         "the session runs but is not recorded\n")
    recorder = Recorder(command, record_input=record_input, limits=limits,
                        runtime_dir=choice.path)
    try:
        return recorder.run()
    except OSError as exc:
        if recorder.child == 0:  # the command could not be started
            sys.stderr.write(f"shellspan record: {command[0]}: {exc.strerror or exc}\n")
            return 127
        raise
