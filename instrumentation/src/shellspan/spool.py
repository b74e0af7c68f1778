"""A bounded on-disk spool of OTLP request bodies, shared by every shell of a user.

Each entry is one file holding the bytes of one ``ExportTraceServiceRequest`` (protobuf,
uncompressed). Files are written atomically (temporary name, then rename) so a reader never sees
half an entry. A sender *claims* an entry by renaming it (``.otlp`` → ``.otlp.claimed-PID``, its
time stamp set to the claim's time) so two processes never send the same entry at once; a claim
whose process is gone, or older than ``stale_claim_s``, is given back. This module is the only
place that knows these names. The spool is bounded in bytes and files: the oldest entries are
dropped first.

The spool holds raw session data, so it is private, and nothing in it is ever written or read
through a symbolic link:

* the directory is this user's own: created mode 0700, opened with ``O_NOFOLLOW`` and checked
  with ``fstat`` (a symlink, a non-directory or a directory owned by another user is refused; a
  directory of ours open to others is made 0700), and every operation goes through that open
  descriptor, so the directory cannot be swapped between the check and the use;
* files are created 0600 with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a fresh random name, then
  renamed; entries are opened with ``O_NOFOLLOW`` and read only when they are regular files owned
  by this user (anything else found in the directory is removed, never followed).

A refused directory is reported once on stderr (and by ``shellspan status``: ``Spool.problem``)
and the spool moves to a private fallback: ``~/.local/state/shellspan/spool`` under ``$HOME`` or
under the password database's home directory, else a new directory made by ``tempfile.mkdtemp``.

Only ``os`` and ``time`` are imported at load: writing happens on the shell's thread at exit.
"""

from __future__ import annotations

import _thread
import os
import sys
import time
from collections.abc import Iterator

SUFFIX = ".otlp"
CLAIM = ".claimed-"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_S_IFMT, _S_IFREG = 0o170000, 0o100000
_reported: set[str] = set()  # refused directories already reported on stderr


class UnsafeDirectory(OSError):
    """A directory that must not be used for private files (the message says why)."""


def pid_alive(pid: int) -> bool:
    """Whether a process exists (signal 0; a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def open_private_dir(path: str, *, create: bool = True) -> int:
    """An open descriptor of ``path``, a directory that belongs to this user alone.

    Created (mode 0700, parents too) when missing and ``create``; raises FileNotFoundError
    when missing otherwise, and UnsafeDirectory for a symlink, a non-directory or a directory
    owned by another user. A directory of ours that others may enter is made 0700."""
    if create:
        parent = os.path.dirname(path.rstrip("/"))
        if parent:
            os.makedirs(parent, 0o700, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            st = os.lstat(path)
        except OSError:
            raise exc from None
        what = "a symbolic link" if st.st_mode & _S_IFMT == 0o120000 else "not a directory"
        raise UnsafeDirectory(f"{path} is {what}") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise UnsafeDirectory(f"{path} is owned by uid {st.st_uid}, not by this user "
                              f"(uid {os.geteuid()})")
    if st.st_mode & 0o077:
        try:
            os.fchmod(fd, 0o700)
        except OSError:
            os.close(fd)
            raise
    return fd


def fallback_dirs(refused: str) -> Iterator[str]:
    """Where to spool when ``refused`` may not be used: the default spool under ``$HOME``, then
    under the home directory the password database gives this user (each is checked like any
    spool directory before use), then a new private temporary directory."""
    homes = [os.environ.get("HOME", "")]
    try:
        import pwd

        homes.append(pwd.getpwuid(os.geteuid()).pw_dir)
    except (ImportError, KeyError):
        pass
    seen = {os.path.abspath(refused)}
    for home in homes:
        if not home:
            continue
        candidate = os.path.abspath(os.path.join(home, ".local", "state", "shellspan", "spool"))
        if candidate not in seen:
            seen.add(candidate)
            yield candidate
    import tempfile

    yield tempfile.mkdtemp(prefix="shellspan-spool-")


class Spool:
    """Bounded private directory of pending OTLP requests."""

    def __init__(self, directory: str, *, max_bytes: int = 32 * 1024 * 1024,
                 max_files: int = 2000, stale_claim_s: float = 120.0) -> None:
        self.configured = directory
        self.dir = directory  # the directory in use: a fallback once the configured one is refused
        self.problem = ""  # why the configured directory was refused, if it was
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.stale_claim_s = stale_claim_s
        self._seq = 0
        self._fd = -1
        self._open_lock = _thread.allocate_lock()

    # --- the directory ---------------------------------------------------------------------

    def _dir_fd(self, create: bool) -> int:
        """The checked directory's descriptor; -1 when it does not exist and ``create`` is
        false. Opened once per process."""
        if self._fd >= 0:
            return self._fd
        with self._open_lock:
            if self._fd < 0:
                try:
                    self._fd = open_private_dir(self.dir, create=create)
                except FileNotFoundError:
                    if create:
                        raise
                    return -1
                except UnsafeDirectory as exc:
                    self._fd = self._fall_back(str(exc))
        return self._fd

    def _fall_back(self, reason: str) -> int:
        self.problem = reason
        for candidate in fallback_dirs(self.dir):
            try:
                fd = open_private_dir(candidate)
            except OSError:
                continue
            self.dir = candidate
            break
        else:  # pragma: no cover - even mkdtemp failed
            raise UnsafeDirectory(reason)
        if reason not in _reported:  # once per process, however many spools it opens
            _reported.add(reason)
            try:
                sys.stderr.write(f"shellspan: spool directory refused: {reason}; "
                                 f"spooling to {self.dir} instead\n")
            except (OSError, ValueError):
                pass
        return fd

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # --- writing -----------------------------------------------------------------------------

    def write(self, body: bytes, *, bounded: bool = True) -> str | None:
        """Add one request body; returns its path, or None when it could not be written.
        ``bounded=False`` skips enforcing the bounds (a directory listing) for a write on a
        shell's start-up path; the next write enforces them."""
        if not body:
            return None
        try:
            dfd = self._dir_fd(create=True)
            self._seq += 1
            name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq}-{os.urandom(4).hex()}"
            tmp = "." + name + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                         0o600, dir_fd=dfd)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                os.close(fd)
                os.unlink(tmp, dir_fd=dfd)
                raise
            os.close(fd)
            os.rename(tmp, name + SUFFIX, src_dir_fd=dfd, dst_dir_fd=dfd)
            if bounded:
                self.enforce_bounds()
            return self._path(name + SUFFIX)
        except OSError:
            return None

    # --- reading -----------------------------------------------------------------------------

    def _entries(self) -> list[tuple[str, int]]:
        """(name, size) of every entry, claimed ones included, oldest first. Anything else that
        looks like an entry (a symlink, another user's file) is removed, never followed."""
        try:
            dfd = self._dir_fd(create=False)
            names = os.listdir(dfd) if dfd >= 0 else []
        except OSError:
            return []
        out = []
        uid = os.geteuid()
        for n in names:
            if not (n.endswith(SUFFIX) or CLAIM in n):
                continue
            try:
                st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
                if st.st_mode & _S_IFMT != _S_IFREG or st.st_uid != uid:
                    os.unlink(n, dir_fd=dfd)
                    continue
            except OSError:
                continue
            out.append((n, st.st_size))
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
                os.unlink(name, dir_fd=self._fd)
                dropped += 1
            except OSError:
                pass
            total -= size
        return dropped

    def pending(self) -> list[str]:
        """Unclaimed entry paths, oldest first."""
        return [self._path(n) for n, _ in self._entries() if n.endswith(SUFFIX)]

    def has_entries(self) -> bool:
        """Whether anything waits to be sent (cheap: one directory listing)."""
        try:
            dfd = self._dir_fd(create=False)
            return dfd >= 0 and any(n.endswith(SUFFIX) for n in os.listdir(dfd))
        except OSError:
            return False

    def size(self) -> tuple[int, int]:
        """(number of entries, total bytes), claimed ones included."""
        entries = self._entries()
        return len(entries), sum(s for _, s in entries)

    # --- claims ------------------------------------------------------------------------------

    def release_stale_claims(self) -> None:
        now = time.time()
        for name, _ in self._entries():
            if CLAIM not in name:
                continue
            base, _, pid = name.partition(CLAIM)
            try:
                stale = (not pid.isdigit() or not pid_alive(int(pid))
                         or now - os.stat(name, dir_fd=self._fd, follow_symlinks=False).st_mtime
                         > self.stale_claim_s)
                if stale:
                    os.rename(name, base, src_dir_fd=self._fd, dst_dir_fd=self._fd)
            except OSError:
                continue

    def claim_entry(self, name: str) -> tuple[str, bytes] | None:
        """Claim one entry by name; (claimed path, body), or None when it is not there (sent or
        claimed by another process) or is not a valid entry. The caller must ``ack`` (sent or
        permanently rejected) or ``release`` it."""
        if "/" in name or not name.endswith(SUFFIX) or name.startswith("."):
            return None
        claimed = name + CLAIM + str(os.getpid())
        try:
            dfd = self._dir_fd(create=False)
            if dfd < 0:
                return None
            os.rename(name, claimed, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError:
            return None  # another process claimed it first
        try:
            fd = os.open(claimed, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
        except OSError:  # a symlink (or it vanished): not ours to read
            self._remove(claimed)
            return None
        try:
            st = os.fstat(fd)
            if st.st_mode & _S_IFMT != _S_IFREG or st.st_uid != os.geteuid():
                self._remove(claimed)
                return None
            os.utime(fd)  # the claim's age counts from now (stale claims are given back)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        except OSError:
            self.release(self._path(claimed))
            return None
        finally:
            os.close(fd)
        return self._path(claimed), b"".join(chunks)

    def claim(self, limit: int = 50) -> Iterator[tuple[str, bytes]]:
        """Claim up to ``limit`` entries, oldest first, one at a time; yields (claimed path,
        body). Stopping the iteration early leaves the rest unclaimed."""
        self.release_stale_claims()
        for path in self.pending()[:limit]:
            got = self.claim_entry(os.path.basename(path))
            if got is not None:
                yield got

    def _remove(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self._fd)
        except OSError:
            pass

    def ack(self, entry: str) -> None:
        """An entry was sent (or refused for good): remove it. ``entry`` is a claimed path, or
        the path ``write`` returned when the writer sent the same spans from memory (if another
        process claimed it meanwhile, it sends it again: a harmless duplicate, stored once)."""
        self._remove(os.path.basename(entry))

    def release(self, claimed: str) -> None:
        """Give a claimed entry back for a later send."""
        name = os.path.basename(claimed)
        try:
            os.rename(name, name.split(CLAIM)[0], src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except OSError:
            pass
