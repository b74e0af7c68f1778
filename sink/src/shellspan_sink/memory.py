"""Giving memory back to the system after a burst of large requests (glibc only; elsewhere a
no-op).

glibc serves an allocation above its mmap threshold with its own mapping, returned on free, but
it raises that threshold (up to 32 MiB) each time such a block is freed, so after the first large
request every later body of up to 32 MiB lands in the heap, and a heap with live blocks above the
freed ones cannot shrink: held-open 15 MiB bodies would keep the sink's memory at its peak for
good. Fixing the threshold at 1 MiB (setting it stops the adjustment) keeps large bodies in their
own mappings, and a trim after a large request hands back the freed pages of the heap too. The
trim runs the cycle collector first: a request that ends in an exception (a client that hangs up
mid-body) can leave its body referenced from a traceback cycle, which only the collector frees.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
TRIM_DELAY = 1.0  # seconds
LARGE = 1 << 20  # a request body this large is followed by a trim

_libc = None
_lock = threading.Lock()
_timer: threading.Timer | None = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else False
        except OSError:
            _libc = False
    return _libc


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (call once at start). False where there is no glibc."""
    libc = _glibc()
    return bool(libc) and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def _trim() -> None:
    global _timer
    with _lock:
        _timer = None
    gc.collect()  # a body that an exception's traceback still holds is freed by the cycle collector
    _glibc().malloc_trim(0)


def trim_soon() -> None:
    """Return the heap's free pages to the system within TRIM_DELAY seconds: one trim covers
    every large request that ends meanwhile, and the last one of a burst is always followed by
    one."""
    global _timer
    if not _glibc():
        return
    with _lock:
        if _timer is None:
            _timer = threading.Timer(TRIM_DELAY, _trim)
            _timer.daemon = True
            _timer.start()
