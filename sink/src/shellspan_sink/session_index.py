"""Choosing sessions by start time through ``shell_session_index``, so that a query over many
sessions reads only the index rows of the time it asks about.

The index holds one row per session and insert block, with the block's earliest span
(``start_time``), latest activity and identity columns. Two facts make it exact:

* a row's ``start_time`` is never earlier than its session's start (the minimum over the
  session's rows), so every session that started at or after T has all its rows at or after T;
* a session's identity fields (the least (order, value) tuple over its rows, as in
  ``shell_sessions``) are those of one of its rows, which is also at or after its start.

So "sessions with a row at or after T that matches the filters" is a superset of "sessions
that started at or after T and match them" (`Window.candidates`); the queries then compute each
candidate's exact values from ``shell_sessions`` and apply every filter exactly. A page of the
newest sessions is exact once it holds limit + 1 sessions that started at or after T, since any
session that started before T is older than all of them (`SessionQueries.list_sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import tables

# Identity filters that are columns of the index, with the filter field that sets each.
IDENTITY_COLUMNS = (("user_name", "user"), ("host_name", "host"),
                    ("component_name", "component"), ("shell_type", "shell_type"))


def ns_literal(name: str) -> str:
    """A bound Unix-nanosecond parameter as a DateTime64(9), comparable with the index's key."""
    return f"fromUnixTimestamp64Nano({{{name}:Int64}})"


@dataclass
class Window:
    """Index rows that can belong to the sessions wanted: sessions that started in
    [``lo_ns``, ``hi_ns``) (either open), with the given identity, and (``seen_after_ns``)
    active at or after that time without having ended (all rows of a session that has not
    ended say so, the one with its last activity too)."""

    lo_ns: int | None = None
    hi_ns: int | None = None
    identity: dict[str, str] = field(default_factory=dict)
    seen_after_ns: int | None = None

    def _row_conditions(self, prefix: str, params: dict[str, Any],
                        seen: bool = True) -> list[str]:
        conditions = []
        if self.lo_ns is not None:
            params[f"{prefix}lo"] = self.lo_ns
            conditions.append(f"start_time >= {ns_literal(prefix + 'lo')}")
        for column, value in sorted(self.identity.items()):
            params[f"{prefix}{column}"] = value
            conditions.append(f"tupleElement(first_{column}, 5) = {{{prefix}{column}:String}}")
        if seen and self.seen_after_ns is not None:
            params[f"{prefix}seen"] = self.seen_after_ns
            conditions.append(f"last_seen >= {ns_literal(prefix + 'seen')} AND ended = 0")
        return conditions

    def candidates(self, db, params: dict[str, Any], prefix: str = "w_") -> str:
        """A subquery of session ids: a superset of the sessions this window describes.

        The identity, the last activity and the start within [lo, hi) can each be on a
        different row of a session (at or after its start), so each is a condition of its
        own: the session has a row with that identity, a row with that activity (and not
        ended), and a row in [lo, hi), which its earliest row is when it started there."""
        index = db(tables.SESSION_INDEX)
        conditions = self._row_conditions(prefix, params, seen=False)
        sql = f"SELECT session_id FROM {index} WHERE {' AND '.join(conditions) or '1'}"
        lower = [f"start_time >= {ns_literal(prefix + 'lo')}"] if self.lo_ns is not None else []
        if self.seen_after_ns is not None:
            params[f"{prefix}seen"] = self.seen_after_ns
            active = lower + [f"last_seen >= {ns_literal(prefix + 'seen')}", "ended = 0"]
            sql += (f" AND session_id IN (SELECT session_id FROM {index} "
                    f"WHERE {' AND '.join(active)})")
        if self.hi_ns is not None:
            params[f"{prefix}hi"] = self.hi_ns
            bounded = lower + [f"start_time < {ns_literal(prefix + 'hi')}"]
            sql += (f" AND session_id IN (SELECT session_id FROM {index} "
                    f"WHERE {' AND '.join(bounded)})")
        return sql

    def nth_newest_start(self, db, offset: int, params: dict[str, Any],
                         prefix: str = "n_") -> tuple[str, dict[str, Any]]:
        """The start_time of the `offset`-th newest matching row below ``hi_ns``: a guess of
        where a page of that many sessions begins (read in the index's order, so cheap)."""
        local: dict[str, Any] = dict(params)
        conditions = self._row_conditions(prefix, local)
        if self.hi_ns is not None:
            local[f"{prefix}hi"] = self.hi_ns
            conditions.append(f"start_time < {ns_literal(prefix + 'hi')}")
        local[f"{prefix}offset"] = offset
        return (f"SELECT toUnixTimestamp64Nano(start_time) FROM {db(tables.SESSION_INDEX)} "
                f"WHERE {' AND '.join(conditions) or '1'} ORDER BY start_time DESC "
                f"LIMIT 1 OFFSET {{{prefix}offset:UInt64}}"), local
