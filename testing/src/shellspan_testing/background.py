"""Long-running child processes for tests (collectors, Jaeger): start, wait until they listen,
stop, read their logs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class WaitTimeout(TimeoutError, AssertionError):
    """A condition never came true (a test failure, and a TimeoutError for callers that wait)."""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2, on_fail=None):
    """Poll until `predicate()` is truthy and return its value; fail with `on_fail()` appended.
    The one way the tests and benchmarks wait for a condition (the sink's own `wait_for` adds
    tolerance of a sink still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    extra = f"\n{on_fail()}" if on_fail else ""
    raise WaitTimeout(f"timed out after {timeout}s waiting for {what}{extra}")


def running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie nobody has reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def go_command() -> str | None:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_bounded(args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run in its own process group, the whole group killed on timeout (a `go build`
    leaves compiler children behind otherwise)."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


class Process:
    """A long-running child (collector or Jaeger) with its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, ready_ports: list[int],
                 env: dict[str, str] | None = None) -> None:
        self.args, self.log_path, self.ready_ports = args, log_path, ready_ports
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Process:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready() -> bool:
            assert self.proc.poll() is None, f"{self.args[0]} exited early:\n{self.log()}"
            return all(port_open(p) for p in self.ready_ports)

        wait_for(ready, timeout, f"{Path(self.args[0]).name} to listen", on_fail=self.log)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""
