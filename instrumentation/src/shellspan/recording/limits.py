"""How much of a session's terminal I/O is recorded: a rate (bytes per second, with a burst) and
a total per recording, and what happens beyond them, as tlog does it:

* ``pass``: no limit, everything is recorded;
* ``delay``: everything is recorded and the output is slowed down to stay within the rate (the
  recorder stops reading the program's output for a while, so the program waits); beyond the
  total, what comes is dropped;
* ``drop``: what exceeds the rate or the total is shown but not recorded; the recording says
  where and how much (a visible marker record with ``shell.recording.dropped_bytes``).

Resizes and the markers themselves are never limited.

=============================  ===========  ===============================================
variable                       default      meaning
=============================  ===========  ===============================================
``SHELLSPAN_RECORD_RATE``      1048576      bytes per second (0: no rate limit)
``SHELLSPAN_RECORD_BURST``     8388608      bytes that may come at once before the rate applies
``SHELLSPAN_RECORD_MAX_BYTES`` 268435456    bytes per recording (0: no total)
``SHELLSPAN_RECORD_ACTION``    drop         ``pass``, ``delay`` or ``drop``
=============================  ===========  ===============================================
"""

from __future__ import annotations

import time
from collections.abc import Mapping

ACTIONS = ("pass", "delay", "drop")
DEFAULT_RATE = 1024 * 1024
DEFAULT_BURST = 8 * 1024 * 1024
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
RECORD, DROP = 0.0, -1.0


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    scale = 1
    for suffix, factor in (("k", 1024), ("m", 1024 ** 2), ("g", 1024 ** 3)):
        if raw.endswith(suffix):
            raw, scale = raw[:-1], factor
            break
    try:
        return max(int(float(raw) * scale), 0)
    except ValueError:
        return default


class Limits:
    """The configured limits (``from_env``); ``budget()`` makes the state of one recording."""

    def __init__(self, rate: int = DEFAULT_RATE, burst: int = DEFAULT_BURST,
                 max_bytes: int = DEFAULT_MAX_BYTES, action: str = "drop") -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        self.rate, self.burst, self.max_bytes, self.action = rate, max(burst, 1), max_bytes, action

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        """The limits the environment sets (ValueError names a bad action)."""
        return cls(_size(env, "SHELLSPAN_RECORD_RATE", DEFAULT_RATE),
                   _size(env, "SHELLSPAN_RECORD_BURST", DEFAULT_BURST),
                   _size(env, "SHELLSPAN_RECORD_MAX_BYTES", DEFAULT_MAX_BYTES),
                   env.get("SHELLSPAN_RECORD_ACTION", "").strip().lower() or "drop")

    def describe(self) -> str:
        rate = f"{self.rate} B/s (burst {self.burst})" if self.rate else "no rate limit"
        total = f"{self.max_bytes} B in all" if self.max_bytes else "no total"
        return f"{self.action}: {rate}, {total}"


class Budget:
    """A token bucket and a running total for one recording."""

    __slots__ = ("rate", "burst", "max_bytes", "action", "tokens", "total", "last", "clock")

    def __init__(self, limits: Limits, clock=time.monotonic) -> None:
        self.rate, self.burst = limits.rate, limits.burst
        self.max_bytes, self.action = limits.max_bytes, limits.action
        self.tokens = float(self.burst)
        self.total = 0
        self.clock = clock
        self.last = clock()

    def take(self, n: int) -> float:
        """What to do with ``n`` more bytes: ``RECORD`` (0.0), ``DROP`` (-1.0), or, with
        ``delay``, a positive number of seconds to stop reading after recording them."""
        if self.action == "pass":
            return RECORD
        if self.max_bytes and self.total + n > self.max_bytes:
            return DROP
        if not self.rate:
            self.total += n
            return RECORD
        now = self.clock()
        tokens = min(self.tokens + (now - self.last) * self.rate, float(self.burst))
        self.last = now
        if self.action == "drop" and tokens < n:
            self.tokens = tokens
            return DROP
        self.tokens = tokens - n
        self.total += n
        if self.tokens < 0:  # delay: recorded; wait until the bucket is back to zero
            return -self.tokens / self.rate
        return RECORD
