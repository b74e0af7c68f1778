"""Queries behind the web UI's analytics that the session API does not answer: the duration
histogram and who is on which host now.

Same rules as ``queries.py``: filters go through ``SessionFilter`` and every user-supplied value
is bound as a parameter.
"""

from __future__ import annotations

from typing import Any

from . import tables
from .queries import SESSION_DURATION_S, SESSION_KEYS, SessionFilter, SessionQueries, iso

# Histogram bucket lower bounds, seconds (constants, never user input).
DURATION_BOUNDS = (0, 1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)
DURATION_LABELS = ("<1s", "1-10s", "10s-1m", "1-5m", "5-15m", "15-30m", "30m-1h", "1-2h",
                   "2-4h", "4-8h", "8-24h", ">=1d")


class AnalyticsQueries:
    def __init__(self, queries: SessionQueries) -> None:
        self.queries = queries
        self.store = queries.store
        self.db = queries.db

    def _base(self, flt: SessionFilter) -> tuple[str, dict[str, Any]]:
        having, params = flt.clauses(self.queries.abandon_after, self.db)
        return (f"SELECT {SESSION_KEYS} FROM {self.db(tables.SESSIONS_BY_ID)} "
                f"GROUP BY session_id HAVING {having}"), params

    def durations(self, flt: SessionFilter) -> dict[str, Any]:
        base, params = self._base(flt)
        bounds = "[" + ", ".join(str(b) for b in DURATION_BOUNDS) + "]"
        rows = self.store.query(f"""
            SELECT arrayCount(b -> d >= b, {bounds}) AS bucket, count() AS sessions
            FROM (SELECT {SESSION_DURATION_S} AS d FROM ({base})) GROUP BY bucket ORDER BY bucket""",
            params).rows
        counts = {int(bucket): int(n) for bucket, n in rows}
        buckets = []
        for i, (lower, label) in enumerate(zip(DURATION_BOUNDS, DURATION_LABELS), 1):
            upper = DURATION_BOUNDS[i] if i < len(DURATION_BOUNDS) else None
            buckets.append({"label": label, "lower_s": lower, "upper_s": upper,
                            "sessions": counts.get(i, 0)})
        return {"buckets": buckets, "sessions": sum(counts.values())}

    def hosts_now(self, flt: SessionFilter) -> dict[str, Any]:
        """Active sessions grouped by host: who is on which host now."""
        flt.state = "active"
        base, params = self._base(flt)
        params["top"] = flt.limit
        rows = self.store.query(f"""
            SELECT host_name, count() AS sessions, groupUniqArray(100)(user_name) AS users,
                   groupUniqArray(20)(shell_type) AS shell_types,
                   max(last_seen_ns) AS last_ns,
                   min(start_ns) AS first_ns
            FROM ({base}) GROUP BY host_name ORDER BY sessions DESC, host_name
            LIMIT {{top:UInt32}}""", params).dicts()
        hosts = [{"host_name": r["host_name"], "sessions": int(r["sessions"]),
                  "users": sorted(r["users"]), "shell_types": sorted(r["shell_types"]),
                  "oldest_start": iso(int(r["first_ns"])), "last_seen": iso(int(r["last_ns"]))}
                 for r in rows]
        return {"hosts": hosts, "count": len(hosts)}
