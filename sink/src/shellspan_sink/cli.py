"""The `shellspan-sink` command: serve, migrate, sessions list [--watch]/show [--follow]/stats/
export/replay/screen/annotate, commands search, access-log, sql, mcp."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import urllib.parse
from typing import Any

from . import cli_live, config, recording_cli
from .access_log import AccessLog
from .api_client import ApiClient, ApiError
from .queries import QueryError, SessionFilter, SessionQueries, finite
from .reading import SessionReading
from .schema import all_statements
from .sqlgate import SqlGate
from .store import Store, StoreError

LIST_COLUMNS = ("session_id", "state", "shell_type", "user", "host_name", "component_name",
                "start_time", "duration_s", "command_count", "failed_count", "exit_reason")
COMMAND_COLUMNS = ("seq", "start_time", "duration_ms", "exit_code", "cwd", "command")
FOREIGN_COLUMNS = ("seq", "start_time", "sent_by", "command")

# Characters that move the cursor, erase, reorder or hide text on a terminal: shown escaped, so
# a typed carriage return or ESC[2K cannot hide a command from whoever reads the output.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x1b": "\\x1b"}


def visible(value: Any) -> str:
    """`value` as text with control and invisible characters written as escapes."""
    text = "" if value is None else str(value)
    return _HIDDEN.sub(lambda m: _NAMED.get(m.group()) or (
        f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"), text)


def who(session: dict) -> str:
    """The verified identity first; the claimed user name only when unverified or different."""
    if not session.get("verified"):
        return f"{session.get('user_name') or '-'} [unverified]"
    if session.get("user_mismatch"):
        return f"{session.get('enduser_id')} [claims {session.get('user_name') or '(none)'}]"
    return str(session.get("enduser_id"))


class Backend:
    """Where queries go: the running sink's API, or (server DSN only) ClickHouse directly."""

    door = "cli"  # what the access log records this client as

    def __init__(self, args: argparse.Namespace) -> None:
        self.client = ApiClient(args.api, args.token, self.door)
        self.queries = None
        self.reading: SessionReading | None = None  # reads recorded in the access log
        self.sql_gate = None
        cfg = config.load(args, scope=config.STORE)
        if cfg.store:
            if cfg.store.startswith("chdb:"):
                raise SystemExit("shellspan-sink: the embedded store is owned by the running sink; "
                                 "query it through --api (drop --store)")
            self.queries = SessionQueries(Store(cfg.store, cfg.schema), cfg.abandon_after)
            self.reading = SessionReading(self.queries, AccessLog(self.queries.store))
            self.sql_gate = SqlGate(cfg.sql_store or cfg.store, cfg.schema, cfg.sql_limits)

    def _open(self, path: str, params: dict[str, Any] | None = None, body: bytes | None = None):
        """The API's answer, open (None for 404); SystemExit for any other error."""
        try:
            return self.client.open(path, params, body)
        except ApiError as exc:
            raise SystemExit(f"shellspan-sink: {exc}") from exc

    def _get(self, path: str, params: dict[str, Any] | None = None, body: bytes | None = None):
        resp = self._open(path, params, body)
        if resp is None:
            return None
        with resp:
            return json.loads(resp.read())

    def get(self, path: str, params: dict[str, Any] | None = None):
        """A JSON answer of the API (None for 404)."""
        return self._get(path, params)

    def stream(self, path: str, params: dict[str, Any] | None = None):
        """The API's answer line by line, as it arrives (nothing for 404)."""
        resp = self._open(path, params)
        if resp is not None:
            with resp:
                yield from resp

    def sessions(self, flt: SessionFilter) -> list[dict]:
        if self.queries:
            return self.queries.list_sessions(flt)["sessions"]
        return self._get("/api/sessions", vars(flt))["sessions"]

    def session(self, session_id: str) -> dict | None:
        if self.reading:
            from .search_cli import local_reader

            return self.reading.show(session_id, local_reader(self.door))
        return self._get(f"/api/sessions/{urllib.parse.quote(session_id, safe='')}")

    def stats(self, flt: SessionFilter, top: int) -> dict:
        if self.queries:
            return self.queries.stats(flt, top)
        return self._get("/api/stats", {**vars(flt), "top": top})

    def sql(self, statement: str) -> dict:
        if self.sql_gate:
            return self.sql_gate.run(statement)
        return self._get("/api/sql", body=statement.encode())


def render_table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[visible(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def render_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: visible(json.dumps(v) if isinstance(v, (dict, list)) else v)
                         for k, v in row.items()})
    return out.getvalue()


def emit(text: str, output: str | None) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        print(f"wrote {output}", file=sys.stderr)
    else:
        print(text)


def _filter(args: argparse.Namespace) -> SessionFilter:
    return SessionFilter(user=args.user, host=args.host, component=args.component,
                         shell_type=args.shell_type, state=args.state, since=args.since,
                         until=args.until, limit=args.limit, tag=args.tag)


def _live_api(backend: Backend, flag: str) -> str:
    if backend.queries:
        raise SystemExit(f"shellspan-sink: {flag} needs the running sink's live stream: "
                         "query through --api (drop --store)")
    return backend.client.api


def cmd_sessions_list(args: argparse.Namespace) -> int:
    if args.watch:
        backend = Backend(args)
        api = _live_api(backend, "--watch")
        flt = _filter(args)
        return cli_live.watch_list(
            api, backend.client.token, vars(flt), lambda: backend.sessions(flt),
            lambda rows: render_table([{**r, "user": who(r)} for r in rows], LIST_COLUMNS))
    rows = Backend(args).sessions(_filter(args))
    for row in rows:
        row["user"] = who(row)
    if args.format == "json":
        emit(json.dumps(finite(rows), indent=2), args.output)
    elif args.format == "csv":
        emit(render_csv(rows, list(rows[0]) if rows else list(LIST_COLUMNS)), args.output)
    else:
        emit(render_table(rows, LIST_COLUMNS), args.output)
    return 0


def cmd_sessions_show(args: argparse.Namespace) -> int:
    if args.follow:
        backend = Backend(args)
        return cli_live.follow_session(_live_api(backend, "--follow"), backend.client.token,
                                       args.session_id, args.format, visible, who)
    found = Backend(args).session(args.session_id)
    if found is None:
        print(f"shellspan-sink: no session {args.session_id}", file=sys.stderr)
        return 1
    if args.format == "json":
        emit(json.dumps(finite(found), indent=2), args.output)
        return 0
    emit(render_session(found), args.output)
    return 0


# Shown first, in this order, by `sessions show`; the rest follow as the API gives them.
_SHOWN_FIRST = ("session_id", "state", "enduser_id", "verified", "user_name", "user_mismatch",
                "auth_host", "owner", "attributes", "parent_session_id", "parent_span_id")


def render_session(found: dict) -> str:
    s = found["session"]
    lines = [f"{'session_id':18} {s['session_id']}", f"{'state':18} {s['state']}"]
    if s.get("verified"):
        via = f", host {s['auth_host']}" if s.get("auth_host") else ""
        lines.append(f"{'identity':18} {s['enduser_id']} (verified{via})")
        mark = "   ! differs from the verified identity" if s.get("user_mismatch") else ""
        lines.append(f"{'claimed user':18} {s.get('user_name') or '(none)'}{mark}")
    else:
        lines.append(f"{'identity':18} unverified; claims user {s.get('user_name') or '(none)'}")
    lines += [f"{k:18} {', '.join(v) if isinstance(v, list) else v}" for k, v in s.items()
              if k not in _SHOWN_FIRST and v not in (None, "", [])]
    parent = found.get("parent")
    if parent:
        by = (f" by command #{parent['command_seq']}: {parent['command']}"
              if parent.get("command") is not None else "")
        lines.append(f"{'started from':18} {parent['session_id']}{by}")
    children = found.get("children") or []
    if children:
        lines.append("nested sessions:")
        lines += [f"  {c['session_id']}" + (f"  (command #{c['command_seq']})"
                                            if c.get("command_seq") is not None else "")
                  for c in children]
    lines.append("attributes:")
    lines += [f"  {k} = {v}" for k, v in sorted(s.get("attributes", {}).items())]
    from .search_cli import annotation_lines

    lines += annotation_lines(found.get("annotations", []))
    text = "\n".join(visible(line) for line in lines)
    text += "\n\n" + render_table(found["commands"], COMMAND_COLUMNS)
    foreign = found.get("foreign_commands") or []
    if foreign:
        for c in foreign:
            c["sent_by"] = c.get("enduser_id") if c.get("verified") else "unverified"
        text += ("\n\nsent by another identity (not part of this session):\n"
                 + render_table(foreign, FOREIGN_COLUMNS))
    return text


def cmd_sessions_stats(args: argparse.Namespace) -> int:
    stats = Backend(args).stats(_filter(args), args.top)
    if args.format == "json":
        emit(json.dumps(finite(stats), indent=2), args.output)
        return 0
    parts = ["totals", render_table([stats["totals"]], list(stats["totals"]))]
    for key in ("by_user", "by_host", "by_component", "by_shell_type", "top_commands"):
        rows = stats[key]
        parts += ["", key.replace("_", " "), render_table(rows, list(rows[0]) if rows else ["key"])]
    hours = stats["busiest_hours"][: args.top]
    parts += ["", "busiest hours (UTC; weekday 1 = Monday)", render_table(hours, ["weekday", "hour", "sessions"])]
    emit("\n".join(parts), args.output)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    result = Backend(args).sql(args.statement)
    rows = [dict(zip(result["columns"], r)) for r in result["rows"]]
    if args.format == "json":
        emit(json.dumps(finite(rows), indent=2, default=str), args.output)
    elif args.format == "csv":
        emit(render_csv(rows, result["columns"]), args.output)
    else:
        emit(render_table(rows, result["columns"]), args.output)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    cfg = config.load(args, scope=config.STORE)
    if args.print_sql:
        print(";\n\n".join(all_statements(cfg.schema)) + ";")
        return 0
    os.umask(0o077)  # an embedded store it creates is the sink's alone (as `serve` makes it)
    applied = Store(cfg.store_dsn, cfg.schema).migrate()
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve  # the listeners' libraries load only for `serve`

    return serve(config.load(args))


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="shellspan-sink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the sink (OTLP in, API out)")
    config.add_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    config.add_arguments(p, config.STORE)
    p.add_argument("--print", dest="print_sql", action="store_true",
                   help="print the DDL instead of applying it")
    p.set_defaults(func=cmd_migrate)

    def query_args(p: argparse.ArgumentParser, formats=("table", "json", "csv")) -> None:
        config.add_arguments(p, config.STORE)
        p.add_argument("--api", default=env("SHELLSPAN_API", "http://127.0.0.1:8678"),
                       help="the running sink's API (default http://127.0.0.1:8678)")
        p.add_argument("--token", default=env("SHELLSPAN_READ_TOKEN"),
                       help="bearer token with the sessions:read scope (and sessions:sql for "
                            "`sql`), when the sink requires one")
        p.add_argument("--format", choices=formats, default="table")
        for shortcut in ("json", "csv"):
            if shortcut in formats:
                p.add_argument(f"--{shortcut}", dest="format", action="store_const",
                               const=shortcut, help=f"same as --format {shortcut}")
        p.add_argument("--output", help="write to this file instead of standard output")

    def filter_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--user")
        p.add_argument("--host")
        p.add_argument("--component")
        p.add_argument("--shell-type")
        p.add_argument("--state", choices=("active", "ended", "abandoned"))
        p.add_argument("--since", help="ISO 8601, Unix seconds, or an age like 24h / 7d")
        p.add_argument("--until")
        p.add_argument("--limit", type=int, default=100)
        p.add_argument("--tag", help="sessions carrying this annotation tag")

    sessions = sub.add_parser("sessions", help="query recorded sessions").add_subparsers(
        dest="sessions_command", required=True)
    p = sessions.add_parser("list", help="sessions, newest first")
    query_args(p)
    filter_args(p)
    p.add_argument("--watch", action="store_true",
                   help="keep the list on screen, updated as sessions change (table format)")
    p.set_defaults(func=cmd_sessions_list)
    p = sessions.add_parser("show", help="one session with its commands")
    query_args(p, ("table", "json"))
    p.add_argument("session_id")
    p.add_argument("--follow", action="store_true",
                   help="print commands as they arrive, until the session ends (json: one "
                        "event per line)")
    p.set_defaults(func=cmd_sessions_show)
    p = sessions.add_parser("stats", help="counts, durations, busiest hours, top commands")
    query_args(p, ("table", "json"))
    filter_args(p)
    p.add_argument("--top", type=int, default=10)
    p.set_defaults(func=cmd_sessions_stats)
    recording_cli.add_commands(sessions, query_args, Backend)

    from . import search_cli

    search_cli.add_commands(sub, sessions, query_args)

    p = sub.add_parser("sql", help="run one read-only SELECT over the shellspan database "
                                   "(bounded; see docs/security.md)")
    query_args(p)
    p.add_argument("statement")
    p.set_defaults(func=cmd_sql)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (QueryError, ValueError) as exc:
        print(f"shellspan-sink: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"shellspan-sink: store error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
