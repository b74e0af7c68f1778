"""Running the agent as a per-user daemon: detaching from the shell that started it, the lock
that keeps it to one per user, and the pid file the hooks read to find it."""

from __future__ import annotations

import os
import signal
import time

from shellspan.files import replace_file
from shellspan.posix import procfs
from shellspan.posix.runtime import open_private, path

PID_FILE = "agent.pid"
LOCK_FILE = "agent.lock"
LOG_FILE = "agent.log"
LOG_ROTATE_BYTES = 1024 * 1024


def detach(log_path: str) -> None:
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
        if os.path.getsize(log_path) > LOG_ROTATE_BYTES:
            os.replace(log_path, log_path + ".1")
    except OSError:
        pass
    log = open_private(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


class AgentLock:
    """An exclusive ``flock`` on ``agent.lock``: one agent per user (per runtime directory)."""

    def __init__(self, directory: str) -> None:
        self.path = path(LOCK_FILE, directory)
        self.fd = -1

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lock; False if another agent holds it (after ``wait_s``, while that one is
        stopping: it has already taken its pid file away)."""
        import fcntl

        fd = open_private(self.path, os.O_RDWR)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline or read_pid(os.path.dirname(self.path)):
                    os.close(fd)
                    return False
                time.sleep(0.05)
        self.fd = fd
        return True


def write_pid_file(directory: str) -> None:
    """Publish this process as the agent (written aside and renamed: never seen half-written)."""
    replace_file(path(PID_FILE, directory), f"{os.getpid()}\n".encode())


def remove_pid_file(directory: str) -> None:
    """Remove the pid file if it still names this process."""
    pidfile = path(PID_FILE, directory)
    try:
        with open(pidfile) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(pidfile)
    except OSError:
        pass


def read_pid(directory: str) -> int | None:
    """The running agent's pid, or None if there is none."""
    try:
        with open(path(PID_FILE, directory)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if procfs.alive(pid) else None


def stop_agent(directory: str, timeout: float = 5.0) -> int:
    """``shellspan agent stop``: SIGTERM to the running agent, wait until it is gone."""
    pid = read_pid(directory)
    if pid is None:
        print("agent: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and procfs.alive(pid):
        time.sleep(0.05)
    print(f"agent: stopped (pid {pid})")
    return 0
