"""Files the shell side writes whole (the agent's state and pid files, the broker's keys, the
``.pth`` hook): written under a fresh name beside the target and renamed over it, so a reader
never sees half of one, with the mode given whatever the umask, and never through a symbolic
link planted at either name (the rename replaces a link at the final name)."""

from __future__ import annotations

import os


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o600, *,
                 sync: bool = False) -> None:
    """Replace ``path`` with ``data`` (``sync``: on disk before the rename)."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
