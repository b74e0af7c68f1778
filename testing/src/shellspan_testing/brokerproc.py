"""Run the real token broker (``shellspan broker``) on a temporary socket and key, for tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHELLSPAN = str(Path(sys.executable).with_name("shellspan"))


class BrokerProcess:
    """A broker whose socket every local user can reach (a fresh 0755 directory under /tmp) and
    whose key lives in that directory's ``keys/`` (created on first start)."""

    def __init__(self, *, ttl_s: float = 300.0, alg: str = "ES256", extra_args: list[str] = ()
                 ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ssp-broker-"))
        self.dir.chmod(0o755)
        self.socket = str(self.dir / "broker.sock")
        self.key = self.dir / "keys" / "host.key"
        self.public_pem = self.key.with_suffix(".pub.pem")
        self.jwks = self.key.with_suffix(".jwks.json")
        self.args = [SHELLSPAN, "broker", "--socket", self.socket, "--key", str(self.key),
                     "--ttl", str(ttl_s), "--alg", alg, *extra_args]
        self.log_path = self.dir / "broker.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log()}")
            if "listening on" in self.log() and os.path.exists(self.socket):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"broker did not listen:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tokens_for(self, name: str) -> int:
        """How many tokens the broker has signed for login ``name`` (its log says so)."""
        return len(re.findall(rf"token for {re.escape(name)} \(uid", self.log()))

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
