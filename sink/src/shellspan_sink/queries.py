"""Session queries over the derived tables. Every user-supplied value is bound as a parameter.

The same functions serve the HTTP API and, against a server DSN, the CLI directly.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from shellspan import semconv

from . import tables
from .session_index import IDENTITY_COLUMNS, Window
from .store import Store, tuple_values

STATES = ("active", "ended", "abandoned")
MAX_LIMIT = 10_000
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_CURSOR = re.compile(r"^(\d{1,19})-([0-9a-f]{32})$")


class QueryError(ValueError):
    """A filter value that cannot be used (answered with HTTP 400)."""


def parse_time(value: str | None, now: float | None = None) -> int | None:
    """ISO 8601, Unix seconds, or a relative age such as ``15m``, ``24h``, ``7d``: to Unix ns."""
    if value is None or value == "":
        return None
    value = value.strip()
    now = time.time() if now is None else now
    if m := _RELATIVE.match(value):
        ns = (now - int(m.group(1)) * _UNITS[m.group(2)]) * 1e9
    else:
        try:
            ns = float(value) * 1e9
        except ValueError:
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise QueryError(f"cannot read time {value[:40]!r}: use ISO 8601, Unix seconds "
                                 "or 15m/24h/7d") from exc
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ns = dt.timestamp() * 1e9
    if not -(2**63) < ns < 2**63:  # also refuses nan and inf
        raise QueryError(f"time {value[:40]!r} is out of range")
    return int(ns)


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no such numbers; an
    aggregate over nothing, such as a quantile, gives NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def iso(ns: int | None) -> str | None:
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


def filter_values(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The given values of dataclass `cls`'s fields: unknown names refused, empty values dropped,
    ``limit`` read as a whole number."""
    unknown = set(params) - {f.name for f in fields(cls)}
    if unknown:
        raise QueryError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    values = {k: v for k, v in params.items() if v not in (None, "")}
    if "limit" in values:
        try:
            values["limit"] = int(values["limit"])
        except (TypeError, ValueError) as exc:
            raise QueryError(f"limit must be a whole number, not {values['limit']!r}") from exc
    return values


def time_range(column: str, since: str | None, until: str | None) -> tuple[list[str], dict[str, Any]]:
    """Conditions bounding DateTime64 `column` (a constant name) to [since, until)."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if (start := parse_time(since)) is not None:
        conditions.append(f"{column} >= fromUnixTimestamp64Nano({{since:Int64}})")
        params["since"] = start
    if (end := parse_time(until)) is not None:
        conditions.append(f"{column} < fromUnixTimestamp64Nano({{until:Int64}})")
        params["until"] = end
    return conditions, params


@dataclass
class SessionFilter:
    user: str | None = None
    host: str | None = None
    component: str | None = None
    shell_type: str | None = None
    state: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    cursor: str | None = None  # a page's next_cursor: continue after that session
    tag: str | None = None  # an annotation tag the session carries

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> SessionFilter:
        return cls(**filter_values(cls, params))

    def clauses(self, abandon_after: float,
                db: Callable[[str], str] | None = None) -> tuple[str, dict[str, Any]]:
        """A HAVING clause over the aggregated session columns, and its bound parameters
        (`db` qualifies table names, for the filters that read another table)."""
        if self.state is not None and self.state not in STATES:
            raise QueryError(f"state must be one of {', '.join(STATES)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        conditions: list[str] = []
        params: dict[str, Any] = {"abandon_ns": int(abandon_after * 1e9), "limit": self.limit}
        for column, value in (("user_name", self.user), ("host_name", self.host),
                              ("component_name", self.component), ("shell_type", self.shell_type),
                              ("state", self.state)):
            if value is not None:
                conditions.append(f"{column} = {{{column}:String}}")
                params[column] = value
        if (since := parse_time(self.since)) is not None:
            conditions.append("start_ns >= {since:Int64}")
            params["since"] = since
        if (until := parse_time(self.until)) is not None:
            conditions.append("start_ns < {until:Int64}")
            params["until"] = until
        if self.cursor:
            m = _CURSOR.match(self.cursor)
            if not m or int(m.group(1)) >= 2**63:
                raise QueryError("cursor must be the next_cursor value of a previous page")
            conditions.append("(start_ns < {cursor_ns:Int64} OR "
                              "(start_ns = {cursor_ns:Int64} AND session_id > {cursor_id:String}))")
            params.update(cursor_ns=int(m.group(1)), cursor_id=m.group(2))
        if self.tag is not None:
            from .annotations import tagged_sessions  # here: annotations imports this module

            if db is None or len(self.tag) > 1024:
                raise QueryError("the tag filter is not available here" if db is None
                                 else "tag is longer than 1024 characters")
            tagged, tag_params = tagged_sessions(db, self.tag)
            conditions.append(f"session_id IN ({tagged})")
            params.update(tag_params)
        return (" AND ".join(conditions) or "1"), params

    def window(self, params: dict[str, Any], abandon_after: float) -> Window:
        """The index rows that can belong to matching sessions, from the bounds `clauses` put
        in `params` (so both read the same parsed times)."""
        highs = [params[k] + d for k, d in (("until", 0), ("cursor_ns", 1)) if k in params]
        identity = {column: getattr(self, name) for column, name in IDENTITY_COLUMNS
                    if getattr(self, name) is not None}
        seen_after = None
        if self.state == "active":  # active: seen within abandon_after (a minute of slack)
            seen_after = int((time.time() - abandon_after - 60) * 1e9)
        return Window(lo_ns=params.get("since"), hi_ns=min(*highs, 2**63 - 1) if highs else None,
                      identity=identity, seen_after_ns=seen_after)


def _identity(*fields: str) -> str:
    """Columns from the session's identity tuple (`ident`), under the field's own name."""
    return ",\n".join(f"    tupleElement(ident, '{name}') AS {name}" for name in fields)


def _first(*fields: str) -> str:
    """Identity fields lists filter on, from their own small columns (the same span's values as
    the identity tuple, cheaper to aggregate over every session)."""
    return ",\n".join(f"    tupleElement(min(first_{name}), 5) AS {name}" for name in fields)


_FILTERED = ("shell_type", "user_name", "host_name", "component_name")


# A session's state, over the aggregated columns is_ended and last_seen_ns.
SESSION_STATE = """multiIf(is_ended = 1, 'ended',
            last_seen_ns >= toUnixTimestamp64Nano(now64(9)) - {abandon_ns:Int64}, 'active',
            'abandoned') AS state"""

_END_KEY = """
    toUnixTimestamp64Nano(max(end_time)) AS end_ns,"""


def session_keys(*identity_fields: str, end: bool = True) -> str:
    """What filters, ordering and liveness need, cheap to aggregate over every session: times,
    state, and the identity fields named (from their own small columns; who a session is comes
    from one of its own spans, see sql/shell_sessions_rows.sql). Without `end`, no end time
    (the index's rows have none)."""
    keys = f"""
    session_id,
    toUnixTimestamp64Nano(min(start_time)) AS start_ns,
    toUnixTimestamp64Nano(max(last_seen)) AS last_seen_ns,{_END_KEY if end else ""}
    max(ended) AS is_ended,
    {SESSION_STATE}"""
    return keys + (",\n" + _first(*identity_fields) if identity_fields else "")


SESSION_KEYS = session_keys(*_FILTERED)
# The keys over the index's rows: exact for a session when every one of its rows is read
# (session_index.py).
INDEX_KEYS = session_keys(*_FILTERED, end=False)

# A session's duration in seconds, over the columns of SESSION_KEYS: to its end once ended, else
# to its last activity.
SESSION_DURATION_S = "(if(is_ended = 1 AND end_ns > 0, end_ns, last_seen_ns) - start_ns) / 1e9"

# Command counts: uniqExact merges, the costly part of a row.
_SESSION_COUNTS = """
    uniqExactMerge(command_ids) AS command_count,
    uniqExactMerge(failed_ids) AS failed_count"""

# What the stats read of each session: the keys and the command counts.
SESSION_STATS_COLUMNS = SESSION_KEYS + "," + _SESSION_COUNTS

# Everything a session row shows (read for a page of sessions, by primary key).
SESSION_COLUMNS = SESSION_KEYS + """,
    argMinMerge(identity) AS ident,
""" + _identity("service_name", "component_version", "tty", "client_address", "pid",
                "enduser_id", "verified", "auth_host", "parent_session_id",
                "parent_span_id") + """,
    max(exit_reason) AS exit_reason,
    max(exit_code) AS exit_code,
    argMinMerge(owner) AS owner_identity,""" + _SESSION_COUNTS


def session_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A session row for the API. The verified identity (`enduser_id`, `verified`) is what the
    sink established; `user_name` is what the client claimed, and `user_mismatch` says when a
    verified session claims another user name."""
    start, last, end = row.pop("start_ns"), row.pop("last_seen_ns"), row.pop("end_ns")
    ended = bool(row.pop("is_ended"))
    row.pop("ident", None)
    owner = row.pop("owner_identity", None)
    owner = tuple_values(owner) if owner is not None else None
    stop = end if ended and end else last
    exit_code = row.get("exit_code")
    verified = bool(row.get("verified"))
    row.update(
        start_time=iso(start), last_seen=iso(last), end_time=iso(end) if ended else None,
        duration_s=round(max(stop - start, 0) / 1e9, 3),
        exit_code=int(exit_code) if exit_code not in (None, "") and exit_code.lstrip("-").isdigit() else None,
        verified=verified,
        user_mismatch=verified and row.get("user_name", "") != row.get("enduser_id", ""),
        command_count=int(row["command_count"]), failed_count=int(row["failed_count"]),
    )
    if owner is not None:
        row["owner"] = {"enduser_id": owner[0], "key_id": owner[1]} if owner[0] else None
    return row


def split_by_owner(session: dict[str, Any], commands: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A session's commands (as `commands_of` reads them) in two: those its owner sent (or all,
    when it has none), and those another identity sent by a path that does not check owners,
    which say who sent them."""
    owned, foreign = [], []
    owner = session.get("owner")
    for c in commands:
        sender = (c.pop("enduser_id"), c.pop("auth_key_id"), bool(c.pop("verified")))
        mine = owner is None or sender == (owner["enduser_id"], owner["key_id"], True)
        if not mine:
            c["enduser_id"], c["verified"] = sender[0], sender[2]
        (owned if mine else foreign).append(c)
    return owned, foreign


def _identity_of(span_attributes: dict[str, str]) -> tuple[str, bool]:
    return (span_attributes.get(semconv.ENDUSER_ID, ""),
            span_attributes.get(semconv.AUTH_VERIFIED) == "true")


class SessionQueries:
    def __init__(self, store: Store, abandon_after: float = 300.0) -> None:
        self.store = store
        self.abandon_after = abandon_after
        self.db = store.options.name  # callable: table name -> qualified name

    def list_sessions(self, flt: SessionFilter) -> dict[str, Any]:
        """A page of sessions, newest first: {sessions, count, next_cursor}.

        The page is looked for among the sessions with index rows at or after T, T being the
        start of the newest few hundred matching index rows (``session_index``):

        1. their keys are aggregated from the index rows at or after T, exact for every session
           that started at or after T (all its rows are there), and the newest `extra` more
           than a page that match the filters by these keys are taken;
        2. those are read by id (states and all) and kept if they really started at or after T
           (a session that started before T shows a later start in step 1).

        If that leaves fewer than limit + 1, T moves back or more are taken, until it does or
        no bound is left. A page continues after a keyset cursor, so the cost of a page grows
        with what is newer than it only through the index rows read in step 1.
        """
        having, params = flt.clauses(self.abandon_after, self.db)
        window = flt.window(params, self.abandon_after)
        want = flt.limit + 1  # one more tells whether there is a next page
        index, table = self.db(tables.SESSION_INDEX), self.db(tables.SESSIONS_BY_ID)
        rows_guessed, extra = want * 4, 32
        while True:
            sql, guess_params = window.nth_newest_start(self.db, rows_guessed - 1, params)
            found = self.store.query(sql, guess_params).rows
            start_ns = int(found[0][0]) if found else None
            page_window = window if start_ns is None else replace(
                window, lo_ns=max(start_ns, window.lo_ns if window.lo_ns is not None else start_ns))
            page_params = dict(params, page_lo=start_ns or 0, take=want + extra)
            candidates = page_window.candidates(self.db, page_params)
            lo = ("WHERE start_time >= fromUnixTimestamp64Nano({page_lo:Int64}) AND "
                  if start_ns is not None else "WHERE ")
            chosen = self.store.query(
                f"SELECT session_id FROM (SELECT {INDEX_KEYS} FROM {index} "
                f"{lo}session_id IN ({candidates}) GROUP BY session_id "
                f"HAVING {having} AND start_ns >= {{page_lo:Int64}} "
                "ORDER BY start_ns DESC, session_id LIMIT {take:UInt32})", page_params).rows
            ids = [r[0] for r in chosen]
            rows = self.store.query(
                f"SELECT {SESSION_COLUMNS} FROM {table} WHERE session_id IN {{ids:Array(String)}} "
                f"GROUP BY session_id HAVING {having} AND start_ns >= {{page_lo:Int64}} "
                "ORDER BY start_ns DESC, session_id", {**page_params, "ids": ids}).dicts()
            if len(rows) >= want or (start_ns is None and len(ids) < want + extra):
                break
            if len(ids) < want + extra:  # the window held too few: reach further back
                rows_guessed *= 8
            else:  # sessions that started before T took places: take more
                extra *= 4
        more = len(rows) > flt.limit
        rows = rows[: flt.limit]
        next_cursor = f"{rows[-1]['start_ns']}-{rows[-1]['session_id']}" if more else None
        sessions = [session_dict(r) for r in rows]
        return {"sessions": sessions, "count": len(sessions), "next_cursor": next_cursor}

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """Metadata, the start and root spans' attributes, the commands in order and the
        shell-state snapshots."""
        session_id = session_id.lower()
        if not _SESSION_ID.match(session_id):
            raise QueryError("a session id is 32 hexadecimal characters")
        params = {"id": session_id, "abandon_ns": int(self.abandon_after * 1e9)}
        rows = self.store.query(
            f"SELECT {SESSION_COLUMNS} FROM {self.db(tables.SESSIONS_BY_ID)} "
            "WHERE session_id = {id:String} GROUP BY session_id", params).dicts()
        if not rows:
            return None
        # Every span of the session started within [start, last activity or end].
        span_range = (int(rows[0]["start_ns"]),
                      max(int(rows[0]["last_seen_ns"]), int(rows[0]["end_ns"] or 0)))
        session = session_dict(rows[0])
        # No FINAL: a re-delivered copy carries the same attributes, merged below anyway. Only
        # spans of the identity the session shows contribute (one sent by another path under
        # another identity does not).
        spans = self.store.query(
            "SELECT span_name, resource_attributes, span_attributes "
            f"FROM {self.db(tables.SESSION_ATTRIBUTES)} WHERE session_id = {{id:String}} "
            "ORDER BY span_name = {root:String}", {**params, "root": semconv.SPAN_SESSION}).rows
        attributes: dict[str, str] = {}
        for _name, resource, span_attrs in spans:  # start span first, then the root overrides
            if _identity_of(span_attrs) == (session["enduser_id"], session["verified"]):
                attributes.update(resource)
                attributes.update(span_attrs)
        session["attributes"] = attributes
        owned, foreign = split_by_owner(session, self.commands_of([session_id]).get(session_id, []))
        from .snapshots import session_snapshots

        found = {"session": session, "commands": owned, "parent": self._parent(session),
                 "children": self._children(session_id),
                 "snapshots": session_snapshots(self.store, session_id,
                                                (session["enduser_id"], session["verified"]),
                                                span_range)}
        if foreign:  # sent under another identity by a path that does not check owners
            found["foreign_commands"] = foreign
        return found

    def _parent(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """The session that started this one (as the child claims it), with its command."""
        parent_id = session.get("parent_session_id") or ""
        if not _SESSION_ID.match(parent_id):
            return None
        rows = self.store.query(
            f"SELECT seq, command FROM {self.db(tables.COMMANDS)} "
            "WHERE session_id = {parent:String} AND span_id = {span:String} LIMIT 1",
            {"parent": parent_id, "span": session.get("parent_span_id") or ""}).rows
        seq, command = rows[0] if rows else (None, None)
        return {"session_id": parent_id, "span_id": session.get("parent_span_id") or None,
                "command_seq": seq, "command": command}

    def _children(self, session_id: str) -> list[dict[str, Any]]:
        """Sessions whose start or root span names this one as their parent, with the command
        of this session that started each, oldest first."""
        rows = self.store.query(
            "SELECT session_id, toUnixTimestamp64Nano(min(started)) AS started, "
            f"any(parent_span_id) AS span_id FROM {self.db(tables.SESSION_CHILDREN)} "
            "WHERE parent_session_id = {id:String} "
            "GROUP BY session_id ORDER BY started, session_id LIMIT 1000", {"id": session_id}).dicts()
        if not rows:
            return []
        commands = dict(self.store.query(
            f"SELECT span_id, seq FROM {self.db(tables.COMMANDS)} "
            "WHERE session_id = {id:String} AND span_id IN {spans:Array(String)} "
            "LIMIT 1 BY span_id",
            {"id": session_id, "spans": [r["span_id"] for r in rows]}).rows)
        return [{"session_id": r["session_id"], "start_time": iso(r["started"]),
                 "span_id": r["span_id"] or None, "command_seq": commands.get(r["span_id"])}
                for r in rows]

    def sessions_by_id(self, session_ids: list[str],
                       keep_start_ns: bool = False) -> dict[str, dict[str, Any]]:
        """The rows (as the list shows them) of these sessions, by id; unknown ids are left out.
        With `keep_start_ns`, each also has its start in Unix nanoseconds (``start_ns``)."""
        if not session_ids:
            return {}
        rows = self.store.query(
            f"SELECT {SESSION_COLUMNS} FROM {self.db(tables.SESSIONS_BY_ID)} "
            "WHERE session_id IN {ids:Array(String)} GROUP BY session_id",
            {"ids": session_ids, "abandon_ns": int(self.abandon_after * 1e9)}).dicts()
        out = {}
        for r in rows:
            start_ns = r["start_ns"]
            out[r["session_id"]] = session_dict(r)
            if keep_start_ns:
                out[r["session_id"]]["start_ns"] = start_ns
        return out

    def commands_of(self, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The commands of these sessions, in order (sequence number, start, span id), each with
        the identity that sent it (`split_by_owner`)."""
        if not session_ids:
            return {}
        rows = self.store.query(
            "SELECT session_id, span_id, seq, toUnixTimestamp64Nano(start_time) AS start_ns, "
            "duration_ns, command, command_name, cwd, exit_code, status, redacted, enduser_id, "
            "auth_key_id, verified "
            f"FROM {self.db(tables.COMMANDS)} FINAL WHERE session_id IN {{ids:Array(String)}} "
            "ORDER BY session_id, seq, start_ns, span_id", {"ids": session_ids}).dicts()
        out: dict[str, list[dict[str, Any]]] = {}
        for c in rows:
            c["start_time"] = iso(c.pop("start_ns"))
            c["duration_ms"] = round(c.pop("duration_ns") / 1e6, 3)
            c["redacted"] = bool(c["redacted"])
            out.setdefault(c.pop("session_id"), []).append(c)
        return out

    def stats(self, flt: SessionFilter, top: int = 10) -> dict[str, Any]:
        """Counts, duration percentiles, busiest hours, top commands and failure rates: from the
        hourly rollups where they hold the answer, else computed exactly (``rollups.py``)."""
        from .rollups import Rollups  # it builds on this module

        return Rollups(self).stats(flt, top)

    def stats_base(self, flt: SessionFilter, window: Window | None = None
                   ) -> tuple[str, dict[str, Any]]:
        """Every matching session's row (a subquery); with `window`, only its candidates are
        read (they must include every matching session)."""
        having, params = flt.clauses(self.abandon_after, self.db)
        where = f"WHERE session_id IN ({window.candidates(self.db, params)}) " if window else ""
        return (f"SELECT {SESSION_STATS_COLUMNS} FROM {self.db(tables.SESSIONS_BY_ID)} {where}"
                f"GROUP BY session_id HAVING {having}"), params

    def exact_stats(self, flt: SessionFilter, top: int = 10,
                    window: Window | None = None) -> dict[str, Any]:
        """`stats` computed from every matching session (the definition the rollups match)."""
        base, params = self.stats_base(flt, window)
        params["top"] = top
        duration = SESSION_DURATION_S

        def grouped(key: str) -> list[dict[str, Any]]:
            return self.store.query(f"""
                SELECT {key} AS key, count() AS sessions,
                       countIf(state = 'active') AS active,
                       round(quantile(0.5)({duration}), 3) AS duration_p50_s,
                       round(quantile(0.9)({duration}), 3) AS duration_p90_s,
                       round(quantile(0.99)({duration}), 3) AS duration_p99_s,
                       sum(command_count) AS commands, sum(failed_count) AS failed_commands,
                       round(if(commands = 0, 0, failed_commands / commands), 4) AS failure_rate
                FROM ({base}) GROUP BY key ORDER BY sessions DESC, key LIMIT {{top:UInt32}}""",
                params).dicts()

        totals = self.store.query(f"""
            SELECT count() AS sessions, countIf(state = 'active') AS active,
                   countIf(state = 'ended') AS ended, countIf(state = 'abandoned') AS abandoned,
                   sum(command_count) AS commands, sum(failed_count) AS failed_commands,
                   round(quantile(0.5)({duration}), 3) AS duration_p50_s,
                   round(quantile(0.9)({duration}), 3) AS duration_p90_s,
                   round(quantile(0.99)({duration}), 3) AS duration_p99_s
            FROM ({base})""", params).dicts()[0]
        hours = self.store.query(f"""
            SELECT toDayOfWeek(fromUnixTimestamp64Nano(start_ns, 'UTC')) AS weekday,
                   toHour(fromUnixTimestamp64Nano(start_ns, 'UTC')) AS hour, count() AS sessions
            FROM ({base}) GROUP BY weekday, hour ORDER BY sessions DESC, weekday, hour""",
            params).dicts()
        return {
            "totals": {k: (int(v) if isinstance(v, int) else v) for k, v in totals.items()},
            "by_user": grouped("user_name"),
            "by_host": grouped("host_name"),
            "by_component": grouped("component_name"),
            "by_shell_type": grouped("shell_type"),
            "busiest_hours": hours,
            "top_commands": self.top_commands(base, params, top),
        }

    def top_commands(self, base: str, params: dict[str, Any], top: int) -> list[dict[str, Any]]:
        """The most run commands of the sessions `base` selects."""
        return self.store.query(f"""
            SELECT command_name, count() AS runs, countIf(status = 'Error') AS failures,
                   round(failures / runs, 4) AS failure_rate,
                   round(quantile(0.5)(duration_ns) / 1e6, 3) AS duration_p50_ms
            FROM {self.db(tables.COMMANDS)} FINAL
            WHERE session_id IN (SELECT session_id FROM ({base})) AND command_name != ''
            GROUP BY command_name ORDER BY runs DESC, command_name LIMIT {{top:UInt32}}""",
            {**params, "top": top}).dicts()

