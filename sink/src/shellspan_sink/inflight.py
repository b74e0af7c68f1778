"""A bound on the request-body bytes the receivers hold at once, across every connection of
OTLP/HTTP and OTLP/gRPC: beyond it a request is refused as overloaded (503 with Retry-After,
gRPC UNAVAILABLE with RetryInfo), over HTTP before its body is read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from . import memory
from .outcomes import Outcome, Refused


class InflightBytes:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.refused = 0
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Count `size` bytes as held while the block runs; Refused if they do not fit."""
        with self._lock:
            if self.held + size > self.limit:
                self.refused += 1
                raise Refused(Outcome.OVERLOADED,
                              f"too many request bytes in flight ({self.held} held, {size} more "
                              f"asked, {self.limit} allowed): retry later")
            self.held += size
        try:
            yield
        finally:
            with self._lock:
                self.held -= size
            if size >= memory.LARGE:
                memory.trim_soon()

    def state(self) -> dict:
        with self._lock:
            return {"held_bytes": self.held, "limit_bytes": self.limit,
                    "refused_requests": self.refused}
