"""Rollups behind ``/api/stats``: what the stats read of a million sessions, computed ahead.

What the rollups hold. ``shell_stats_hourly``: for every hour, the sessions that *started* in
it, per user, host, shell type, component and whether they had ended: how many, their commands
and failed commands, the quantile state and histogram of their durations.
``shell_stats_hourly_commands``: the commands of those sessions per hour and name: runs,
failures, the quantile state of their durations. ``shell_stats_daily`` and
``shell_stats_daily_commands``: the same merged per day (fewer, larger quantile states, for
queries over many days). The hourly rows are computed from ``shell_stats_sessions``, each
session's values as the rollups last counted them (start, last activity, end, identity, command
counts), which are exactly those of the exact query (``SessionQueries.exact_stats``); the daily
rows from the hourly ones. A still-open session is counted with the duration, counts and
identity it had when it last received spans; whether it is active or abandoned depends on the
clock alone and is decided at query time.

Exactly once. Nothing is added up per insert: a session's values are re-read from
``shell_sessions_by_id`` (which counts each command span id once) whenever it receives spans,
and an hour's rows are then recomputed from those values and replace the hour's previous rows
as a whole (one insert per hour and version; readers take each hour's newest version). A
re-delivered span or a replayed WAL segment therefore changes nothing but the need to recompute.

Keeping them current. ``shell_session_updates`` records, by the store's clock, when each session
received spans; ``shell_stats_progress`` the time up to which every such session has been
counted again (the watermark). ``Refresher`` advances it in the sink's background.

What a query computes itself (``Rollups.stats``): the sessions that received spans after the
watermark (read by id, so answers never lag the store), the partial hours at the edges of a
``since``/``until`` range (from ``shell_stats_sessions``, ordered by start), and which open
sessions are active now. Filters the rollups cannot answer (a ``cursor``, ``state=abandoned``,
or no rollups yet) use the exact query; ``state=active``, and the top commands of one user,
host, component or shell type, use it over the candidate sessions the index yields.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shellspan import semconv

from . import tables
from .analytics import DURATION_BOUNDS
from .queries import (
    SESSION_DURATION_S,
    SESSION_STATE,
    SESSION_STATS_COLUMNS,
    SessionFilter,
    SessionQueries,
)
from .schema import literal

log = logging.getLogger(__name__)

HOUR_S = 3600
HOUR_NS = HOUR_S * 10**9
DAY_S = 86400
# Sessions updated this long before the watermark count as changed too: an insert stamps its
# rows before they become visible, and another writer's insert may become visible late.
OVERLAP_MS = 30_000
MARKER = 255  # the `ended` value of the row each computation of an hour writes
PROGRESS_NAME = "hourly"
# Above this many ids, an IN list is checked row by row instead of through the primary key
# (whose analysis grows with the list).
_IN_INDEX_LIMIT = "SETTINGS use_index_for_in_with_subqueries_max_values = 20000"

_HOUR_OF_START = "toStartOfHour(fromUnixTimestamp64Nano(start_ns, 'UTC'))"
_BUCKETS = "[" + ", ".join(str(b) for b in DURATION_BOUNDS) + "]"
_EMPTY_DURATIONS = "arrayReduce('quantilesState(0.5, 0.9, 0.99)', emptyArrayFloat64())"
_EMPTY_COMMAND_DURATIONS = "arrayReduce('quantileState(0.5)', emptyArrayUInt64())"
_HOURLY_COLUMNS = ("hour, user_name, host_name, shell_type, component_name, ended, version, "
                   "sessions, commands, failed_commands, durations, duration_buckets")
_COMMAND_COLUMNS = "hour, command_name, version, runs, failures, durations"
_DAILY_COLUMNS = ("day, user_name, host_name, shell_type, component_name, ended, version, "
                  "sessions, commands, failed_commands, durations, duration_buckets, "
                  "sessions_by_hour")
_DAILY_COMMAND_COLUMNS = "day, command_name, version, runs, failures, durations"
_BY_HOUR_OF_DAY = "arrayMap(i -> if(i = toHour(hour), sessions, 0), range(24))"
_SUMMARY_COLUMNS = ("start_time, session_id, last_seen, end_time, ended, user_name, host_name, "
                    "shell_type, component_name, command_count, failed_count, version, "
                    "is_deleted")
# A row of shell_stats_sessions as the per-session row of the exact query.
_SUMMARY_AS_SESSION = f"""
    session_id, toUnixTimestamp64Nano(start_time) AS start_ns,
    toUnixTimestamp64Nano(last_seen) AS last_seen_ns, toUnixTimestamp64Nano(end_time) AS end_ns,
    ended AS is_ended, {SESSION_STATE}, toString(shell_type) AS shell_type,
    toString(user_name) AS user_name, toString(host_name) AS host_name,
    toString(component_name) AS component_name, command_count, failed_count"""


def hour_ranges(hours: list[int]) -> list[tuple[int, int]]:
    """Unix-second hour starts merged into [start, end) ranges of consecutive hours."""
    ranges: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + HOUR_S)
        else:
            ranges.append((hour, hour + HOUR_S))
    return ranges


def in_ranges(column: str, ranges_ns: list[tuple[int, int]], params: dict[str, Any],
              prefix: str) -> str:
    """`column` (a DateTime64) within any of the nanosecond ranges; bounds bound as params."""
    parts = []
    for i, (lo, hi) in enumerate(ranges_ns):
        params[f"{prefix}lo{i}"], params[f"{prefix}hi{i}"] = lo, hi
        parts.append(f"({column} >= fromUnixTimestamp64Nano({{{prefix}lo{i}:Int64}}) AND "
                     f"{column} < fromUnixTimestamp64Nano({{{prefix}hi{i}:Int64}}))")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


@dataclass
class Progress:
    watermark_ms: int
    version: int


class Rollups:
    """Computes the hourly rollups, and the stats from them."""

    def __init__(self, queries: SessionQueries) -> None:
        self.queries = queries
        self.store = queries.store
        self.db = queries.db

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"abandon_ns": int(self.queries.abandon_after * 1e9), **values}

    # --- sessions as the rollups count them --------------------------------------------------

    def counted_sessions(self, ranges_ns: list[tuple[int, int]], params: dict[str, Any],
                         exclude: str | None = None, prefix: str = "s_") -> str:
        """Per-session rows (as the exact query's) of the sessions counted as started within
        the ranges, but those whose ids `exclude` (a subquery) selects."""
        where = in_ranges("start_time", ranges_ns, params, prefix)
        if exclude:
            where += f" AND session_id NOT IN ({exclude})"
        return (f"SELECT {_SUMMARY_AS_SESSION} FROM {self.db(tables.STATS_SESSIONS)} FINAL "
                f"WHERE {where}")

    def fresh_sessions(self, ids: str | None) -> str:
        """Per-session rows, read now by id, of the sessions `ids` selects (None: all)."""
        where = f"WHERE session_id IN ({ids}) " if ids else ""
        return (f"SELECT {SESSION_STATS_COLUMNS} FROM {self.db(tables.SESSIONS_BY_ID)} {where}"
                "GROUP BY session_id")

    def updated_since(self, since_ms: int) -> str:
        """The ids of the sessions that received spans after `since_ms` (store clock)."""
        return (f"SELECT DISTINCT session_id FROM {self.db(tables.SESSION_UPDATES)} "
                "WHERE updated_at > fromUnixTimestamp64Milli({changed_since:Int64})")

    # --- rows of the rollup tables -------------------------------------------------------------

    @staticmethod
    def hourly_rows(sessions: str) -> str:
        """Rows of ``shell_stats_hourly`` (without version) for per-session rows `sessions`."""
        duration = SESSION_DURATION_S
        return f"""
            SELECT {_HOUR_OF_START} AS hour, user_name, host_name, shell_type, component_name,
                   is_ended AS ended, count() AS sessions, sum(command_count) AS commands,
                   sum(failed_count) AS failed_commands,
                   quantilesState(0.5, 0.9, 0.99)({duration}) AS durations,
                   sumForEach(arrayMap(b -> toUInt64(b = arrayCount(x -> {duration} >= x,
                       {_BUCKETS})), range({len(DURATION_BOUNDS) + 1}))) AS duration_buckets
            FROM ({sessions})
            GROUP BY hour, user_name, host_name, shell_type, component_name, ended"""

    def command_rows(self, sessions: str) -> str:
        """Rows of ``shell_stats_hourly_commands`` (without version) for per-session rows
        `sessions` (a subquery read four times: keep it cheap).

        The command spans are read from the raw table, whose sorting key (span name, time)
        keeps a time range together: a session's spans all started between its start and its
        last activity. Each (trace id, span id) is read once, as ``shell_commands FINAL``
        has it."""
        return f"""
            SELECT {_HOUR_OF_START} AS hour, c.command_name AS command_name, count() AS runs,
                   countIf(c.status = 'Error') AS failures,
                   quantileState(0.5)(c.duration_ns) AS durations
            FROM (SELECT TraceId AS session_id,
                         SpanAttributes[{literal(semconv.COMMAND_NAME)}] AS command_name,
                         StatusCode AS status, Duration AS duration_ns
                  FROM {self.db(tables.OTEL_TRACES)}
                  WHERE SpanName = {literal(semconv.SPAN_COMMAND)}
                    AND Timestamp >= fromUnixTimestamp64Nano(
                        (SELECT min(start_ns) FROM ({sessions})))
                    AND Timestamp <= fromUnixTimestamp64Nano(
                        (SELECT max(last_seen_ns) FROM ({sessions})))
                    AND TraceId IN (SELECT session_id FROM ({sessions}))
                  LIMIT 1 BY TraceId, SpanId) AS c
            INNER JOIN (SELECT session_id, start_ns FROM ({sessions})) AS s
                ON c.session_id = s.session_id
            WHERE c.command_name != ''
            GROUP BY hour, command_name"""

    # --- keeping them current ---------------------------------------------------------------

    def progress(self) -> Progress | None:
        rows = self.store.query(
            f"SELECT toUnixTimestamp64Milli(watermark), version "
            f"FROM {self.db(tables.STATS_PROGRESS)} FINAL WHERE name = {{name:String}}",
            {"name": PROGRESS_NAME}).rows
        return Progress(int(rows[0][0]), int(rows[0][1])) if rows else None

    def store_now_ms(self) -> int:
        return int(self.store.query("SELECT toUnixTimestamp64Milli(now64(3))").rows[0][0])

    def count_again(self, since_ms: int | None, version: int) -> list[int]:
        """Read anew the sessions that received spans after `since_ms` (None: every session)
        into ``shell_stats_sessions``; return the hours (Unix seconds) to recompute: those the
        sessions are counted in now, and those they were counted in before (`record_starts`
        records the new ones once those hours are recomputed)."""
        params = self._params(changed_since=since_ms or 0, version=version)
        ids = None if since_ms is None else self.updated_since(since_ms)
        summaries, starts = self.db(tables.STATS_SESSIONS), self.db(tables.STATS_SESSION_STARTS)
        previous = f"SELECT session_id, start_time FROM {starts} FINAL" + (
            f" WHERE session_id IN ({ids})" if ids else "")
        old_hours = self.store.query(
            f"SELECT DISTINCT toUInt32(toStartOfHour(toDateTime(start_time, 'UTC'))) "
            f"FROM ({previous}) {_IN_INDEX_LIMIT}", params).rows
        self.store.command(f"""
            INSERT INTO {summaries} ({_SUMMARY_COLUMNS})
            SELECT fromUnixTimestamp64Nano(start_ns), session_id,
                   fromUnixTimestamp64Nano(last_seen_ns), fromUnixTimestamp64Nano(end_ns),
                   is_ended, user_name, host_name, shell_type, component_name, command_count,
                   failed_count, {{version:UInt64}}, 0
            FROM ({self.fresh_sessions(ids)}) {_IN_INDEX_LIMIT}""", params)
        new = f"SELECT session_id, start_time FROM {summaries} WHERE version = {{version:UInt64}}"
        # A session counted at another start before: a deletion row at its old place.
        self.store.command(f"""
            INSERT INTO {summaries} ({_SUMMARY_COLUMNS})
            SELECT o.start_time, o.session_id, o.start_time, o.start_time, 0, '', '', '', '',
                   0, 0, {{version:UInt64}}, 1
            FROM ({previous}) AS o LEFT ANTI JOIN ({new}) AS n
                ON o.session_id = n.session_id AND o.start_time = n.start_time
            {_IN_INDEX_LIMIT}""", params)
        new_hours = self.store.query(
            f"SELECT DISTINCT toUInt32(toStartOfHour(toDateTime(start_time, 'UTC'))) "
            f"FROM ({new})", params).rows
        return sorted({int(r[0]) for r in old_hours + new_hours})

    def record_starts(self, version: int) -> None:
        """Where the sessions counted at `version` are counted, by id (after their hours were
        recomputed: until then a query finds their old hours here)."""
        summaries, starts = self.db(tables.STATS_SESSIONS), self.db(tables.STATS_SESSION_STARTS)
        self.store.command(f"""
            INSERT INTO {starts} (session_id, start_time, version)
            SELECT session_id, start_time, version FROM {summaries}
            WHERE version = {{version:UInt64}} AND is_deleted = 0""", {"version": version})

    def changed_hours(self, changed_ids: str, params: dict[str, Any]) -> list[int]:
        """The hours (Unix seconds) the sessions `changed_ids` selects are counted in, and
        were counted in until their hours were last recomputed."""
        hour = "toUInt32(toStartOfHour(toDateTime(start_time, 'UTC')))"
        rows = self.store.query(f"""
            SELECT DISTINCT hour FROM (
                SELECT {hour} AS hour FROM {self.db(tables.STATS_SESSIONS)} FINAL
                WHERE session_id IN ({changed_ids})
                UNION ALL
                SELECT {hour} AS hour FROM {self.db(tables.STATS_SESSION_STARTS)} FINAL
                WHERE session_id IN ({changed_ids})) {_IN_INDEX_LIMIT}""", params).rows
        return sorted(int(r[0]) for r in rows)

    def recompute(self, hours: list[int], version: int) -> None:
        """Write the rollups of `hours` (Unix seconds) anew from ``shell_stats_sessions``, each
        hour's rows (with a marker row, so an hour left empty is too) in one insert."""
        if not hours:
            return
        ranges = [(lo * 10**9, hi * 10**9) for lo, hi in hour_ranges(hours)]
        params = self._params(version=version, hours=sorted(set(hours)))
        sessions = self.counted_sessions(ranges, params)
        markers = "SELECT toDateTime(arrayJoin({hours:Array(UInt32)}), 'UTC') AS hour"
        self.store.command(f"""
            INSERT INTO {self.db(tables.STATS_HOURLY)} ({_HOURLY_COLUMNS})
            SELECT hour, user_name, host_name, shell_type, component_name, ended,
                   {{version:UInt64}}, sessions, commands, failed_commands, durations,
                   duration_buckets
            FROM ({self.hourly_rows(sessions)})
            UNION ALL
            SELECT hour, '', '', '', '', {MARKER}, {{version:UInt64}}, 0, 0, 0,
                   {_EMPTY_DURATIONS}, [] FROM ({markers})""", params)
        self.store.command(f"""
            INSERT INTO {self.db(tables.STATS_HOURLY_COMMANDS)} ({_COMMAND_COLUMNS})
            SELECT hour, command_name, {{version:UInt64}}, runs, failures, durations
            FROM ({self.command_rows(sessions)})
            UNION ALL
            SELECT hour, '', {{version:UInt64}}, 0, 0, {_EMPTY_COMMAND_DURATIONS}
            FROM ({markers})""", params)

    def newest(self, table: str, period: str, where: str) -> str:
        """A condition keeping the rows of each `period` (hour or day) of `table` that are of
        its newest version, among those `where` selects."""
        return (f"({period}, version) IN (SELECT {period}, max(version) FROM {self.db(table)} "
                f"WHERE {where} GROUP BY {period})")

    def recompute_days(self, days: list[int], version: int) -> None:
        """Write the daily rollups of `days` (Unix seconds, UTC midnight) anew from the hourly
        ones (which must be current), each day in one insert."""
        if not days:
            return
        params = {"version": version, "days": sorted(set(days)), "marker": MARKER}
        in_days = "toUInt32(toDateTime(toDate(hour), 'UTC')) IN {days:Array(UInt32)}"
        markers = "SELECT toDate(toDateTime(arrayJoin({days:Array(UInt32)}), 'UTC')) AS day"
        hourly = f"{in_days} AND {self.newest(tables.STATS_HOURLY, 'hour', in_days)}"
        self.store.command(f"""
            INSERT INTO {self.db(tables.STATS_DAILY)} ({_DAILY_COLUMNS})
            SELECT toDate(hour) AS day, user_name, host_name, shell_type, component_name, ended,
                   {{version:UInt64}}, sum(sessions), sum(commands), sum(failed_commands),
                   quantilesMergeState(0.5, 0.9, 0.99)(durations), sumForEach(duration_buckets),
                   sumForEach({_BY_HOUR_OF_DAY})
            FROM {self.db(tables.STATS_HOURLY)} WHERE {hourly} AND ended != {{marker:UInt8}}
            GROUP BY day, user_name, host_name, shell_type, component_name, ended
            UNION ALL
            SELECT day, '', '', '', '', {MARKER}, {{version:UInt64}}, 0, 0, 0,
                   {_EMPTY_DURATIONS}, [], [] FROM ({markers})""", params)
        commands = f"{in_days} AND {self.newest(tables.STATS_HOURLY_COMMANDS, 'hour', in_days)}"
        self.store.command(f"""
            INSERT INTO {self.db(tables.STATS_DAILY_COMMANDS)} ({_DAILY_COMMAND_COLUMNS})
            SELECT toDate(hour) AS day, command_name, {{version:UInt64}}, sum(runs),
                   sum(failures), quantileMergeState(0.5)(durations)
            FROM {self.db(tables.STATS_HOURLY_COMMANDS)}
            WHERE {commands} AND command_name != ''
            GROUP BY day, command_name
            UNION ALL
            SELECT day, '', {{version:UInt64}}, 0, 0, {_EMPTY_COMMAND_DURATIONS}
            FROM ({markers})""", params)

    def set_progress(self, watermark_ms: int, version: int) -> None:
        self.store.command(
            f"INSERT INTO {self.db(tables.STATS_PROGRESS)} (name, watermark, version) VALUES "
            "({name:String}, fromUnixTimestamp64Milli({w:Int64}), {v:UInt64})",
            {"name": PROGRESS_NAME, "w": watermark_ms, "v": version})

    # --- the stats -------------------------------------------------------------------------

    def stats(self, flt: SessionFilter, top: int = 10) -> dict[str, Any]:
        q = self.queries
        having, params = flt.clauses(q.abandon_after, q.db)  # validates, parses times once
        window = flt.window(params, q.abandon_after)
        if flt.cursor or flt.state == "abandoned" or flt.tag is not None:  # not in the rollups
            return q.exact_stats(flt, top)
        if flt.state == "active":
            return q.exact_stats(flt, top, window)
        progress = self.progress()
        if progress is None:
            return q.exact_stats(flt, top)
        params["changed_since"] = progress.watermark_ms - OVERLAP_MS
        changed_ids = self.updated_since(params["changed_since"])
        changed_hours = self.changed_hours(changed_ids, params)
        split = Split.of(params.get("since"), params.get("until"), changed_hours)
        params.update(top=top, marker=MARKER, changed=changed_hours, **split.params())
        # The sessions a query computes itself: counted ones in the exact ranges but those
        # that changed since, and the changed ones as they are now, wherever they started.
        exact = (f"SELECT * FROM ({self.counted_sessions(split.exact_ns, params, changed_ids)}) "
                 f"WHERE {having} UNION ALL SELECT * FROM ("
                 f"{self.fresh_sessions(changed_ids)}) WHERE {having}")
        identity = window.identity
        params.update({f"id_{column}": value for column, value in identity.items()})
        matching = " AND ".join(
            ["ended != {marker:UInt8}"]
            + [f"{column} = {{id_{column}:String}}" for column in sorted(identity)]
            + (["ended = 1"] if flt.state == "ended" else []))
        columns = ("user_name, host_name, shell_type, component_name, ended, sessions, "
                   "commands, failed_commands, durations")
        daily = self.db(tables.STATS_DAILY)
        hourly = self.db(tables.STATS_HOURLY)
        periods = f"""
            SELECT toDayOfWeek(day) AS weekday, sessions_by_hour AS by_hour, {columns}
            FROM {daily} WHERE {Split.DAYS} AND {matching}
              AND {self.newest(tables.STATS_DAILY, 'day', Split.DAYS)}
            UNION ALL
            SELECT toDayOfWeek(hour), {_BY_HOUR_OF_DAY}, {columns}
            FROM {hourly} WHERE {Split.HOURS} AND {matching}
              AND {self.newest(tables.STATS_HOURLY, 'hour', Split.HOURS)}
            UNION ALL
            SELECT toDayOfWeek(hour), {_BY_HOUR_OF_DAY}, {columns}
            FROM ({self.hourly_rows(exact)})"""
        groups = self.store.query(f"""
            SELECT grouping(user_name) AS g_user, grouping(host_name) AS g_host,
                   grouping(component_name) AS g_component, grouping(shell_type) AS g_shell,
                   grouping(weekday) AS g_weekday,
                   user_name, host_name, component_name, shell_type, weekday,
                   sum(sessions) AS n, sum(if(ended = 1, sessions, 0)) AS n_ended,
                   sum(commands) AS c, sum(failed_commands) AS f,
                   round(if(c = 0, 0, f / c), 4) AS failure_rate,
                   arrayMap(x -> round(x, 3), quantilesMerge(0.5, 0.9, 0.99)(durations)) AS q,
                   sumForEach(by_hour) AS by_hour_sums
            FROM ({periods})
            GROUP BY GROUPING SETS ((), (user_name), (host_name), (component_name),
                                    (shell_type), (weekday))""", params).dicts()
        active = self.active_identities(flt) if flt.state is None else []
        result = assemble(groups, active, top)
        if identity:  # the rollups of commands are per hour (or day) and name only
            base, base_params = q.stats_base(flt, window)
            result["top_commands"] = q.top_commands(base, base_params, top)
        else:
            result["top_commands"] = self.top_commands(self.listed(exact, params), params, top)
        return result

    def listed(self, sessions: str, params: dict[str, Any]) -> str | None:
        """The per-session rows `sessions` selects, read once and written into the query as
        arrays (`command_rows` reads its sessions four times); None if there are none."""
        rows = self.store.query(
            f"SELECT session_id, start_ns, last_seen_ns FROM ({sessions})", params).rows
        if not rows:
            return None
        params.update(x_ids=[r[0] for r in rows], x_starts=[int(r[1]) for r in rows],
                      x_lasts=[int(r[2]) for r in rows])
        return ("SELECT t.1 AS session_id, t.2 AS start_ns, t.3 AS last_seen_ns FROM "
                "(SELECT arrayJoin(arrayZip({x_ids:Array(String)}, {x_starts:Array(Int64)}, "
                "{x_lasts:Array(Int64)})) AS t)")

    def active_identities(self, flt: SessionFilter) -> list[dict[str, str]]:
        """The identity columns of the matching sessions that are active now (few: the index
        finds them by their last activity)."""
        active = SessionFilter(**{**vars(flt), "state": "active", "cursor": None})
        having, params = active.clauses(self.queries.abandon_after, self.db)
        candidates = active.window(params, self.queries.abandon_after).candidates(self.db, params)
        return self.store.query(f"""
            SELECT user_name, host_name, component_name, shell_type FROM (
                SELECT {SESSION_STATS_COLUMNS} FROM {self.db(tables.SESSIONS_BY_ID)}
                WHERE session_id IN ({candidates}) GROUP BY session_id HAVING {having})""",
            params).dicts()

    def top_commands(self, exact: str | None, params: dict[str, Any],
                     top: int) -> list[dict[str, Any]]:
        """The top commands from the rollups' days and hours and the commands of the `exact`
        sessions (per-session rows, if any)."""
        daily = self.db(tables.STATS_DAILY_COMMANDS)
        hourly = self.db(tables.STATS_HOURLY_COMMANDS)
        computed = (f"UNION ALL SELECT command_name, runs, failures, durations "
                    f"FROM ({self.command_rows(exact)})") if exact else ""
        return self.store.query(f"""
            SELECT command_name, sum(r) AS runs, sum(fl) AS failures,
                   round(failures / runs, 4) AS failure_rate,
                   round(quantileMerge(0.5)(d) / 1e6, 3) AS duration_p50_ms
            FROM (
                SELECT command_name, runs AS r, failures AS fl, durations AS d FROM {daily}
                WHERE command_name != '' AND {Split.DAYS}
                  AND {self.newest(tables.STATS_DAILY_COMMANDS, 'day', Split.DAYS)}
                UNION ALL
                SELECT command_name, runs, failures, durations FROM {hourly}
                WHERE command_name != '' AND {Split.HOURS}
                  AND {self.newest(tables.STATS_HOURLY_COMMANDS, 'hour', Split.HOURS)}
                {computed})
            GROUP BY command_name ORDER BY runs DESC, command_name LIMIT {{top:UInt32}}""",
            params).dicts()


@dataclass
class Split:
    """How a [lo, hi) range of session starts is answered: the whole days in
    [day_lo, day_hi) (Unix seconds) from the daily rollups, the other whole hours in
    [full_lo, full_hi) from the hourly ones, but the changed hours (and their days), which the
    query computes itself like the partial hours at the edges (`exact_ns`, nanoseconds)."""

    full_lo: int
    full_hi: int
    day_lo: int
    day_hi: int
    changed_days: list[int]
    exact_ns: list[tuple[int, int]]

    # The rollup rows a Split answers with (its `params` bound, and `changed`).
    _DAY = "toUInt32(toDateTime(day, 'UTC'))"
    _HOUR_DAY = "toUInt32(toDateTime(toDate(hour), 'UTC'))"
    DAYS = (f"({_DAY} >= {{day_lo:UInt32}} AND {_DAY} < {{day_hi:UInt32}} "
            f"AND {_DAY} NOT IN {{changed_days:Array(UInt32)}})")
    HOURS = (f"(toUInt32(hour) >= {{full_lo:UInt32}} AND toUInt32(hour) < {{full_hi:UInt32}} "
             "AND toUInt32(hour) NOT IN {changed:Array(UInt32)} "
             f"AND ({_HOUR_DAY} < {{day_lo:UInt32}} OR {_HOUR_DAY} >= {{day_hi:UInt32}} "
             f"OR {_HOUR_DAY} IN {{changed_days:Array(UInt32)}}))")

    def params(self) -> dict[str, Any]:
        return {"full_lo": self.full_lo, "full_hi": self.full_hi, "day_lo": self.day_lo,
                "day_hi": self.day_hi, "changed_days": self.changed_days}

    @classmethod
    def of(cls, lo_ns: int | None, hi_ns: int | None, changed: list[int]) -> Split:
        lo = -(2**63) if lo_ns is None else lo_ns
        hi = 2**63 - 1 if hi_ns is None else hi_ns
        top = 2**32 - DAY_S  # within what DateTime holds
        full_lo = 0 if lo_ns is None else min(max(math.ceil(lo_ns / HOUR_NS) * HOUR_S, 0), top)
        full_hi = top if hi_ns is None else min(max(hi_ns // HOUR_NS * HOUR_S, 0), top)
        exact: list[tuple[int, int]] = []
        if full_lo >= full_hi:  # no whole hour in the range
            full_hi = full_lo
            if lo < hi:
                exact.append((lo, hi))
        else:
            if lo < full_lo * 10**9:
                exact.append((lo, full_lo * 10**9))
            if full_hi * 10**9 < hi:
                exact.append((full_hi * 10**9, hi))
            for start, end in hour_ranges([h for h in changed if full_lo <= h < full_hi]):
                exact.append((start * 10**9, end * 10**9))
        day_lo = math.ceil(full_lo / DAY_S) * DAY_S
        day_hi = max(full_hi // DAY_S * DAY_S, day_lo)
        changed_days = sorted({h // DAY_S * DAY_S for h in changed})
        return cls(full_lo, full_hi, day_lo, day_hi, changed_days, sorted(exact))


# grouping(c) is 0 where the row's grouping set includes c (standard SQL): which set a row of
# the grouping sets comes from, by (user, host, component, shell type, weekday).
_GROUPING = {
    (True, True, True, True, True): "totals",
    (False, True, True, True, True): "by_user",
    (True, False, True, True, True): "by_host",
    (True, True, False, True, True): "by_component",
    (True, True, True, False, True): "by_shell_type",
    (True, True, True, True, False): "weekdays",
}


def assemble(groups: list[dict[str, Any]], active: list[dict[str, str]],
             top: int) -> dict[str, Any]:
    """The stats answer (but the top commands) from the grouping sets' rows and the identities
    of the active sessions, in the exact query's shape and order."""
    sets: dict[str, list[dict[str, Any]]] = {}
    for row in groups:
        flags = (row["g_user"], row["g_host"], row["g_component"], row["g_shell"],
                 row["g_weekday"])
        name = _GROUPING.get(tuple(bool(f) for f in flags))
        if name:
            sets.setdefault(name, []).append(row)
    nan = float("nan")
    total = (sets.get("totals") or [None])[0]
    if not total or not total["n"]:
        total = {"n": 0, "n_ended": 0, "c": 0, "f": 0, "q": [nan, nan, nan]}
    sessions, ended = int(total["n"]), int(total["n_ended"])
    totals = {"sessions": sessions, "active": len(active), "ended": ended,
              "abandoned": sessions - ended - len(active),
              "commands": int(total["c"]), "failed_commands": int(total["f"]),
              "duration_p50_s": total["q"][0], "duration_p90_s": total["q"][1],
              "duration_p99_s": total["q"][2]}

    def grouped(name: str, column: str) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for identity in active:
            counts[identity[column]] = counts.get(identity[column], 0) + 1
        rows = [{"key": r[column], "sessions": int(r["n"]),
                 "active": counts.get(r[column], 0), "duration_p50_s": r["q"][0],
                 "duration_p90_s": r["q"][1], "duration_p99_s": r["q"][2],
                 "commands": int(r["c"]), "failed_commands": int(r["f"]),
                 "failure_rate": r["failure_rate"]}
                for r in sets.get(name, []) if r["n"]]
        rows.sort(key=lambda r: (-r["sessions"], r["key"].encode()))
        return rows[:top]

    hours = [{"weekday": int(r["weekday"]), "hour": hour, "sessions": int(n)}
             for r in sets.get("weekdays", []) for hour, n in enumerate(r["by_hour_sums"]) if n]
    hours.sort(key=lambda r: (-r["sessions"], r["weekday"], r["hour"]))
    return {"totals": totals, "by_user": grouped("by_user", "user_name"),
            "by_host": grouped("by_host", "host_name"),
            "by_component": grouped("by_component", "component_name"),
            "by_shell_type": grouped("by_shell_type", "shell_type"), "busiest_hours": hours}


class Refresher:
    """Keeps the rollups current, in the sink's background.

    A round reads anew the sessions that received spans since the watermark, recomputes the
    hours they are and were counted in a few at a time (each statement holds the store, which
    queries share), then moves the watermark to the store time the round began. Rounds follow
    inserts (at most every `min_interval` seconds), come every `idle_interval` seconds otherwise
    (spans another writer stored), and spend at most `duty` of the time working."""

    def __init__(self, rollups: Rollups, run: Callable[..., Awaitable[Any]], *,
                 min_interval: float = 5.0, idle_interval: float = 60.0, duty: float = 0.25,
                 chunk_hours: int = 24) -> None:
        self.rollups = rollups
        self.run = run
        self.min_interval, self.idle_interval, self.duty = min_interval, idle_interval, duty
        self.chunk_hours = chunk_hours
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rounds = 0
        self.hours_recomputed = 0
        self.pending_hours = 0
        self.last_round_s: float | None = None
        self.last_error: str | None = None
        self.watermark_ms: int | None = None

    def notify(self) -> None:
        """New spans are in the store (any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def state(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "hours_recomputed": self.hours_recomputed,
                "pending_hours": self.pending_hours, "last_round_s": self.last_round_s,
                "watermark_ms": self.watermark_ms, "last_error": self.last_error}

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()  # a first round at start (an upgraded store has no rollups yet)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.idle_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            started = time.monotonic()
            try:
                await self.round()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store may be down: try again later
                self.last_error = str(exc)
                log.warning("rollup refresh failed (tried again later): %s", exc)
            took = time.monotonic() - started
            self.last_round_s = round(took, 3)
            await asyncio.sleep(max(self.min_interval, took / self.duty - took))

    async def round(self) -> None:
        rollups = self.rollups
        began_ms = await self.run(rollups.store_now_ms)
        progress = await self.run(rollups.progress)
        since = None if progress is None else progress.watermark_ms - OVERLAP_MS
        version = time.time_ns()
        hours = await self.run(rollups.count_again, since, version)
        self.pending_hours = len(hours)
        for i in range(0, len(hours), self.chunk_hours):
            chunk = hours[i:i + self.chunk_hours]
            await self.run(rollups.recompute, chunk, version)
            self.hours_recomputed += len(chunk)
            self.pending_hours = len(hours) - i - len(chunk)
        days = sorted({hour // DAY_S * DAY_S for hour in hours})
        for i in range(0, len(days), self.chunk_hours):
            await self.run(rollups.recompute_days, days[i:i + self.chunk_hours], version)
        await self.run(rollups.record_starts, version)
        await self.run(rollups.set_progress, began_ms, version)
        self.watermark_ms = began_ms
        self.rounds += 1
