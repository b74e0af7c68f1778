"""The sessions' journal files, as the agent reads them.

Each bash/zsh session appends its records (``records``) to ``r.SESSION.N`` in the runtime
directory, a file of its own (0600); after 1000 commands it goes on in ``r.SESSION.N+1``. The
agent reads every file from where it stopped, on a clock. Nothing a shell writes waits for the
agent or is lost when no agent runs: the next agent goes on from the offsets its predecessor
left in the state file.

Records of different sessions are handed over in time order, the newest files read first: a
session's first record comes after the command that started it (``su -``, ``exec bash``)
was written to the older file, so that command is always among the records read.
"""

from __future__ import annotations

import heapq
import os
import re
import stat
from collections.abc import Callable

from shellspan.posix.records import Record, split

NAME = re.compile(r"r\.([0-9a-f]{32})\.(\d+)")
CHUNK = 1 << 20


def name(session_id: str, generation: int) -> str:
    return f"r.{session_id}.{generation}"


def _when(record: Record) -> int | None:
    for field in ("start_us", "end_us", "time_us"):
        value = getattr(record, field, None)
        if value:
            return value
    return None


class _File:
    def __init__(self, fd: int, offset: int, order: int) -> None:
        self.fd, self.offset, self.order = fd, offset, order


class Journals:
    """Every journal file of one runtime directory, read from where the last read stopped."""

    def __init__(self, directory: str, offsets: dict[str, int] | None = None,
                 on_error: Callable[[bytes, str], None] | None = None,
                 log: Callable[[str], None] = lambda _msg: None) -> None:
        self.dir = directory
        self.saved = dict(offsets or {})  # from the state file: where a previous agent stopped
        self.on_error = on_error
        self.log = log
        self.files: dict[str, _File] = {}
        self.ended: set[str] = set()  # sessions whose files go once read to the end
        self.ignored: set[str] = set()  # names that are not this user's files (said once)
        self._order = 0

    def offsets(self) -> dict[str, int]:
        """Where each file has been read to (kept in the state file)."""
        return {n: f.offset for n, f in self.files.items()}

    def read(self) -> list[Record]:
        """The records written since the last call, all files, in time order."""
        names = self._scan()
        newest = {}
        for n in names:
            sid, gen = NAME.fullmatch(n).groups()
            newest[sid] = max(newest.get(sid, -1), int(gen))
        for n in names:
            if n not in self.files and n not in self.ignored:
                self._open(n)
        batches = []
        for n in sorted(self.files, key=lambda n: -self.files[n].order):
            got = self._read_file(n)
            if got:
                batches.append(got)
        self._clean(newest)
        if len(batches) == 1:
            return batches[0]
        merged = heapq.merge(*(self._keyed(b) for b in batches), key=lambda kr: kr[0])
        return [rec for _, rec in merged]

    @staticmethod
    def _keyed(batch: list[Record]) -> list[tuple[int, Record]]:
        """(time, record) in the file's order; a record without a time takes the one before."""
        out, last = [], 0
        for rec in batch:
            last = _when(rec) or last
            out.append((last, rec))
        return out

    def end(self, session_id: str) -> None:
        """The session is over: its files are removed once read to the end."""
        self.ended.add(session_id)

    def close(self) -> None:
        for f in self.files.values():
            os.close(f.fd)
        self.files.clear()

    # --- files ---------------------------------------------------------------------------------

    def _scan(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.dir) if NAME.fullmatch(n)]
        except OSError:
            return []

    def _open(self, n: str) -> None:
        try:
            fd = os.open(os.path.join(self.dir, n), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)  # not one of this user's journals: left alone
            self.log(f"ignoring {n}: not a file of this user")
            self.ignored.add(n)
            return
        self._order += 1
        self.files[n] = _File(fd, self.saved.pop(n, 0), self._order)

    def _read_file(self, n: str) -> list[Record]:
        f = self.files[n]
        chunks = []
        while True:
            try:
                data = os.pread(f.fd, CHUNK, f.offset + sum(map(len, chunks)))
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
            if len(data) < CHUNK:
                break
        if not chunks:
            return []
        records, used = split(b"".join(chunks), self.on_error)
        f.offset += used
        return records

    def _clean(self, newest: dict[str, int]) -> None:
        """Remove files read to the end that no shell writes any more: an older generation of
        a session, or any file of a session that is over."""
        for n in list(self.files):
            sid, gen = NAME.fullmatch(n).groups()
            if sid not in self.ended and int(gen) >= newest.get(sid, -1):
                continue
            f = self.files[n]
            try:
                if os.fstat(f.fd).st_size > f.offset:
                    continue
                os.unlink(os.path.join(self.dir, n))
            except OSError:
                pass
            os.close(f.fd)
            del self.files[n]
        self.ended &= {NAME.fullmatch(n).group(1) for n in self.files}


class OldFifo:
    """The FIFO ``events`` through which an earlier version's hooks wrote their records.

    Shells started before an upgrade keep writing into it (their records have the same
    grammar, but for the start record, and their sessions are adopted), and such a bash
    shell would block once the pipe is full: it is read on with the journals until no shell
    holds it open, then removed."""

    def __init__(self, fifo: str, on_error: Callable[[bytes, str], None] | None = None) -> None:
        self.path, self.on_error, self.fd, self.pending = fifo, on_error, -1, b""
        try:
            st = os.lstat(fifo)
            if stat.S_ISFIFO(st.st_mode) and st.st_uid == os.geteuid():
                self.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
                                  | os.O_NOFOLLOW)
        except OSError:
            pass

    def read(self) -> list[Record]:
        if self.fd < 0:
            return []
        data = bytearray(self.pending)
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:  # no shell holds it open any more
                self.close(remove=True)
                break
            data += chunk
        records, used = split(bytes(data), self.on_error)
        self.pending = bytes(data[used:])
        return records

    def close(self, remove: bool = False) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            if remove:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass


def old_queues(directory: str, on_error: Callable[[bytes, str], None] | None = None
               ) -> list[Record]:
    """Records that an earlier version's shells left in ``q.PID`` files when they exited with
    no agent up (during an upgrade): read and removed once their shell has gone."""
    from shellspan.posix import procfs

    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("q."))
    except OSError:
        return []
    out: list[Record] = []
    for n in names:
        pid = n[2:].split(".")[0]
        if pid.isdigit() and "." not in n[2:] and procfs.alive(int(pid)):
            continue  # that shell may still append
        queue = os.path.join(directory, n)
        try:
            fd = os.open(queue, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                    continue  # not this user's: left alone
                data = b"".join(iter(lambda fd=fd: os.read(fd, CHUNK), b""))
            finally:
                os.close(fd)
            os.unlink(queue)
        except OSError:
            continue
        out += split(data, on_error)[0]
    return out
