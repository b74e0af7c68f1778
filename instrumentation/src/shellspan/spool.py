"""A bounded on-disk spool of OTLP request bodies, shared by every shell of a user.

Each entry is one file holding the bytes of one ``ExportTraceServiceRequest`` (protobuf,
uncompressed). Files are written atomically (temporary name, then rename) so a reader never sees
half an entry. A sender *claims* an entry by renaming it (``.otlp`` → ``.claimed-PID``) so two
processes never send the same entry at once; a claim whose process is gone (or older than
``stale_claim_s``) is given back. The spool is bounded in bytes and files: the oldest entries are
dropped first. Only ``os`` and ``time`` are used: writing happens on the shell's thread at exit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

SUFFIX = ".otlp"
CLAIM = ".claimed-"


def pid_alive(pid: int) -> bool:
    """Whether a process exists (signal 0; a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Spool:
    """Bounded directory of pending OTLP requests."""

    def __init__(self, directory: str, *, max_bytes: int = 32 * 1024 * 1024,
                 max_files: int = 2000, stale_claim_s: float = 120.0) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.stale_claim_s = stale_claim_s
        self._seq = 0

    def _ensure(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def write(self, body: bytes) -> str | None:
        """Add one request body; returns its path, or None when it could not be written."""
        if not body:
            return None
        try:
            self._ensure()
            self._seq += 1
            name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq}-{os.urandom(3).hex()}"
            tmp = os.path.join(self.dir, "." + name + ".tmp")
            path = os.path.join(self.dir, name + SUFFIX)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            self.enforce_bounds()
            return path
        except OSError:
            return None

    def _entries(self) -> list[tuple[str, int]]:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        out = []
        for n in names:
            if n.endswith(SUFFIX) or CLAIM in n:
                try:
                    out.append((n, os.stat(os.path.join(self.dir, n)).st_size))
                except OSError:
                    continue
        out.sort()
        return out

    def enforce_bounds(self) -> int:
        """Drop the oldest entries beyond the limits; returns how many were dropped."""
        entries = self._entries()
        total = sum(size for _, size in entries)
        dropped = 0
        while entries and (total > self.max_bytes or len(entries) > self.max_files):
            name, size = entries.pop(0)
            try:
                os.unlink(os.path.join(self.dir, name))
                dropped += 1
            except OSError:
                pass
            total -= size
        return dropped

    def pending(self) -> list[str]:
        """Unclaimed entry paths, oldest first."""
        return [os.path.join(self.dir, n) for n, _ in self._entries() if n.endswith(SUFFIX)]

    def size(self) -> tuple[int, int]:
        """(number of entries, total bytes), claimed ones included."""
        entries = self._entries()
        return len(entries), sum(s for _, s in entries)

    def release_stale_claims(self) -> None:
        now = time.time()
        for name, _ in self._entries():
            if CLAIM not in name:
                continue
            base, _, pid = name.partition(CLAIM)
            path = os.path.join(self.dir, name)
            try:
                stale = (not pid.isdigit() or not pid_alive(int(pid))
                         or now - os.stat(path).st_mtime > self.stale_claim_s)
                if stale:
                    os.rename(path, os.path.join(self.dir, base))
            except OSError:
                continue

    def claim(self, limit: int = 50) -> Iterator[tuple[str, bytes]]:
        """Claim up to ``limit`` entries, oldest first; yields (claimed path, body).

        The caller must ``ack`` (sent or permanently rejected) or ``release`` each one.
        """
        self.release_stale_claims()
        for path in self.pending()[:limit]:
            claimed = path[: -len(SUFFIX)] + SUFFIX + CLAIM + str(os.getpid())
            try:
                os.rename(path, claimed)
                os.utime(claimed)
                with open(claimed, "rb") as f:
                    body = f.read()
            except OSError:
                continue  # another process claimed it first
            yield claimed, body

    def ack(self, claimed: str) -> None:
        try:
            os.unlink(claimed)
        except OSError:
            pass

    def release(self, claimed: str) -> None:
        base = claimed.split(CLAIM)[0]
        try:
            os.rename(claimed, base)
        except OSError:
            pass
