"""Command search across sessions: text (a case-insensitive substring, or an RE2 regular
expression), filters, newest first, keyset pages; each hit with its session's identity and the
commands just before and after it.

The hits come from ``shell_command_search``, the commands again in time order, read with FINAL
(so a re-delivered span counts once) from the newest row down: a page stops reading once it has
its rows, and the n-gram bloom filters skip the granules a rare text cannot be in. Filters on
what only the session knows (user, host, shell type, tag) select session ids in a subquery. The
identity and the neighbouring commands of a whole page come from one query each, whatever the
page size. Every user-supplied value is bound as a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import annotations, tables
from .queries import QueryError, filter_values, iso, time_range
from .store import Store, StoreError

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
MAX_TEXT = 1024  # characters of a search text or regular expression
MAX_VALUE = 4096  # characters of any other filter value
FAILED = "failed"
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_CURSOR = re.compile(r"^(\d{1,19})-([0-9a-f]{32})-([0-9a-f]{1,64})$")
_RE2_ERROR = re.compile(r"cannot compile re2: .*?, error: (.{1,200}?)(?:\. Look at|$)", re.S)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

# What a hit shows of its session, as the session list shows it: the verified identity (the
# session's owner, the first verified identity stored, which every stored span of an owned session
# carries) first, else the name the shell claimed; names from the session's first span (first_*).
# Both are small columns: the whole identity state costs several times more to merge.
_OWNER = "tupleElement(argMinMerge(owner), 'enduser_id')"
SESSION_IDENTITY = (f"{_OWNER} AS enduser_id, enduser_id != '' AS verified, " + ", ".join(
    f"tupleElement(min(first_{name}), 5) AS {name}"
    for name in ("user_name", "host_name", "shell_type")))
SHOWN_USER = f"if({_OWNER} != '', {_OWNER}, tupleElement(min(first_user_name), 5))"


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (its %, _ and \\ taken literally), lowercased."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _bounded(name: str, value: str, limit: int = MAX_VALUE) -> str:
    if len(value) > limit:
        raise QueryError(f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise QueryError(f"{name} must not contain NUL characters")
    return value


@dataclass
class CommandFilter:
    q: str | None = None  # the text searched for; None or empty: every command
    regex: bool = False  # q is an RE2 regular expression (ClickHouse `match`)
    user: str | None = None
    host: str | None = None
    shell_type: str | None = None
    cwd: str | None = None  # this directory or any below it
    exit: str | None = None  # an exit code, or "failed"
    since: str | None = None
    until: str | None = None
    session: str | None = None
    tag: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None  # a page's next_cursor: continue after that hit

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> CommandFilter:
        values = filter_values(cls, params)
        if "regex" in values:
            flag = str(values["regex"]).lower()
            if flag not in _TRUE + _FALSE:
                raise QueryError("regex must be 1 or 0")
            values["regex"] = flag in _TRUE
        return cls(**values)

    def conditions(self) -> tuple[list[str], dict[str, Any]]:
        """WHERE conditions over ``shell_command_search`` that need no other table."""
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.q:
            _bounded("q", self.q, MAX_TEXT)
            if self.regex:
                where.append("match(command, {regex:String})")
                params["regex"] = self.q
            else:
                where.append("lowerUTF8(command) LIKE {pattern:String}")
                params["pattern"] = like_pattern(self.q)
        bounds, bound_params = time_range("start_time", self.since, self.until)
        where += bounds
        params.update(bound_params)
        if self.session is not None:
            session = self.session.lower()
            if not _SESSION_ID.match(session):
                raise QueryError("session must be a session id (32 hexadecimal characters)")
            where.append("session_id = {session:String}")
            params["session"] = session
        if self.cwd is not None:
            cwd = _bounded("cwd", self.cwd).rstrip("/")
            where.append("(cwd = {cwd:String} OR startsWith(cwd, {cwd_below:String}))")
            params.update(cwd=cwd or "/", cwd_below=cwd + "/")
        if self.exit is not None:
            if self.exit.lower() == FAILED:
                where.append("status = 'Error'")
            else:
                try:
                    code = int(self.exit)
                except ValueError:
                    raise QueryError("exit must be an exit code or 'failed'") from None
                if not -(2**63) <= code < 2**63:
                    raise QueryError("exit code out of range")
                where.append("exit_code = {exit_code:Int64}")
                params["exit_code"] = code
        if self.cursor:
            m = _CURSOR.match(self.cursor)
            if not m or int(m.group(1)) >= 2**63:
                raise QueryError("cursor must be the next_cursor value of a previous page")
            where.append("start_time <= fromUnixTimestamp64Nano({cursor_ns:Int64})")
            where.append("(start_time, session_id, span_id) < "
                         "(fromUnixTimestamp64Nano({cursor_ns:Int64}), {cursor_session:String}, "
                         "{cursor_span:String})")
            params.update(cursor_ns=int(m.group(1)), cursor_session=m.group(2),
                          cursor_span=m.group(3))
        return where, params

    def session_conditions(self) -> tuple[list[str], list[str], dict[str, Any]]:
        """(WHERE prefilter, HAVING) over ``shell_sessions`` rows for the session-level filters.

        The prefilter keeps only rows that can match (each row's own first_* value, or the
        verified identity every stored span of an owned session carries), so just those sessions
        are merged; HAVING then checks the merged session as the session list does (a user is
        its verified identity when it has one)."""
        where: list[str] = []
        having: list[str] = []
        params: dict[str, Any] = {}
        if self.user is not None:
            params["user"] = _bounded("user", self.user)
            where.append("(tupleElement(first_user_name, 5) = {user:String} "
                         "OR enduser_id = {user:String})")
            having.append(f"{SHOWN_USER} = {{user:String}}")
        for name, column in (("host", "host_name"), ("shell_type", "shell_type")):
            value = getattr(self, name)
            if value is not None:
                params[name] = _bounded(name, value)
                where.append(f"tupleElement(first_{column}, 5) = {{{name}:String}}")
                having.append(f"tupleElement(min(first_{column}), 5) = {{{name}:String}}")
        return where, having, params


@dataclass(frozen=True)
class _Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


class CommandSearch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.options.name

    def check_regex(self, pattern: str) -> None:
        """QueryError (HTTP 400) when RE2 cannot compile `pattern`."""
        try:
            self.store.query("SELECT match('', {regex:String})", {"regex": pattern})
        except StoreError as exc:
            reason = _RE2_ERROR.search(str(exc))
            raise QueryError("invalid regular expression: "
                             + (reason.group(1) if reason else "RE2 cannot compile it")) from None

    def search(self, flt: CommandFilter) -> dict[str, Any]:
        """A page of matching commands, newest first: {commands, count, next_cursor}."""
        where, params = flt.conditions()
        if flt.q and flt.regex:
            self.check_regex(flt.q)
        session_where, having, session_params = flt.session_conditions()
        params.update(session_params)
        by_session = bool(having) or flt.tag is not None
        if having:
            prefilter = " AND ".join(session_where)
            where.append(f"session_id IN (SELECT session_id FROM {self.db(tables.SESSIONS)} "
                         f"WHERE {prefilter} GROUP BY session_id HAVING {' AND '.join(having)})")
        if flt.tag is not None:
            tagged, tag_params = annotations.tagged_sessions(self.db, _bounded("tag", flt.tag))
            where.append(f"session_id IN ({tagged})")
            params.update(tag_params)
        page = self._page(where, params, flt.limit, by_session)
        hits = self._with_context(page.rows)
        return {"commands": hits, "count": len(hits), "next_cursor": page.next_cursor}

    def _page(self, where: list[str], params: dict[str, Any], limit: int,
              by_session: bool) -> _Page:
        """The page's rows, each (session id, span id) once.

        Two plans. By default FINAL, which reads in sorting-key order from the newest row and
        stops at the page's end: fast whenever matches are not rare among recent commands, and
        the n-gram indexes skip the granules a rare text is not in. With a filter on what only
        the session knows (`by_session`), few rows match anywhere, so no early stop is coming:
        then the conditions are read first (PREWHERE) without the sorting-key columns FINAL
        needs for every granule, and duplicates are dropped with LIMIT 1 BY instead.
        """
        params["limit"] = limit + 1  # one more tells whether there is a next page
        final, once = ("", "LIMIT 1 BY session_id, span_id ") if by_session else ("FINAL ", "")
        rows = self.store.query(
            "SELECT toUnixTimestamp64Nano(start_time) AS start_ns, session_id, span_id, seq, "
            "command, cwd, exit_code, duration_ns, status, redacted "
            f"FROM {self.db(tables.COMMAND_SEARCH)} {final}"
            f"WHERE {' AND '.join(where) or '1'} "
            f"ORDER BY start_time DESC, session_id DESC, span_id DESC {once}"
            "LIMIT {limit:UInt32}", params).dicts()
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        cursor = f"{last['start_ns']}-{last['session_id']}-{last['span_id']}" if last else None
        return _Page(rows, cursor)

    def _with_context(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each hit with its session's identity and its neighbours (seq - 1 and seq + 1)."""
        if not rows:
            return []
        ids = sorted({r["session_id"] for r in rows})
        sessions = {s["session_id"]: s for s in self.store.query(
            f"SELECT session_id, {SESSION_IDENTITY} FROM {self.db(tables.SESSIONS)} "
            "WHERE session_id IN {ids:Array(String)} GROUP BY session_id", {"ids": ids}).dicts()}
        wanted = sorted({f"{r['session_id']}:{r['seq'] + step}" for r in rows
                         for step in (-1, 1) if r["seq"] + step > 0})
        # Without FINAL: a re-delivered copy has the same text, and the first row per key wins.
        neighbours: dict[str, str] = {}
        for session_id, seq, command in self.store.query(
                f"SELECT session_id, seq, command FROM {self.db(tables.COMMANDS)} "
                "WHERE session_id IN {ids:Array(String)} "
                "AND has({keys:Array(String)}, concat(session_id, ':', toString(seq))) "
                "ORDER BY session_id, seq, span_id", {"ids": ids, "keys": wanted}).rows:
            neighbours.setdefault(f"{session_id}:{seq}", command)
        return [_hit(r, sessions.get(r["session_id"], {}), neighbours) for r in rows]


def _hit(row: dict[str, Any], session: dict[str, Any], neighbours: dict[str, str]) -> dict[str, Any]:
    def around(step: int) -> dict[str, Any] | None:
        seq = row["seq"] + step
        key = f"{row['session_id']}:{seq}"
        return {"seq": seq, "command": neighbours[key]} if key in neighbours else None

    enduser = session.get("enduser_id") or ""
    exit_code = row["exit_code"]
    return {
        "session_id": row["session_id"],
        "span_id": row["span_id"],
        "seq": row["seq"],
        "start_time": iso(row["start_ns"]),
        "duration_ms": round(row["duration_ns"] / 1e6, 3),
        "command": row["command"],
        "cwd": row["cwd"],
        "exit_code": int(exit_code) if exit_code is not None else None,
        "status": row["status"],
        "redacted": bool(row["redacted"]),
        "user": enduser or session.get("user_name") or "",
        "verified": bool(session.get("verified")) and bool(enduser),
        "user_name": session.get("user_name") or "",
        "enduser_id": enduser,
        "host_name": session.get("host_name") or "",
        "shell_type": session.get("shell_type") or "",
        "before": around(-1),
        "after": around(1),
    }
