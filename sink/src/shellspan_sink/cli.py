"""The `shellspan-sink` command: serve, migrate, sessions list [--watch]/show [--follow]/stats, sql."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import cli_live, config
from .queries import QueryError, SessionFilter, SessionQueries
from .schema import all_statements
from .store import Store, StoreError

LIST_COLUMNS = ("session_id", "state", "shell_type", "user_name", "host_name", "component_name",
                "start_time", "duration_s", "command_count", "failed_count", "exit_reason")
COMMAND_COLUMNS = ("seq", "start_time", "duration_ms", "exit_code", "cwd", "command")


class Backend:
    """Where queries go: the running sink's API, or (server DSN only) ClickHouse directly."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.api = args.api.rstrip("/")
        self.token = args.token
        self.queries = None
        cfg = config.load(args, scope=config.STORE)
        if cfg.store:
            if cfg.store.startswith("chdb:"):
                raise SystemExit("shellspan-sink: the embedded store is owned by the running sink; "
                                 "query it through --api (drop --store)")
            self.queries = SessionQueries(Store(cfg.store, cfg.schema), cfg.abandon_after)

    def _get(self, path: str, params: dict[str, Any] | None = None, body: bytes | None = None):
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        request = urllib.request.Request(f"{self.api}{path}" + (f"?{query}" if query else ""),
                                         data=body, method="POST" if body is not None else "GET")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = cli_live.error_detail(exc)
            if exc.code == 404:
                return None
            raise SystemExit(f"shellspan-sink: {self.api} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SystemExit(f"shellspan-sink: cannot reach the sink at {self.api} ({exc}); "
                             "is `shellspan-sink serve` running? (or pass --api URL)") from exc

    def sessions(self, flt: SessionFilter) -> list[dict]:
        if self.queries:
            return self.queries.list_sessions(flt)["sessions"]
        return self._get("/api/sessions", vars(flt))["sessions"]

    def session(self, session_id: str) -> dict | None:
        if self.queries:
            return self.queries.get_session(session_id)
        return self._get(f"/api/sessions/{urllib.parse.quote(session_id, safe='')}")

    def stats(self, flt: SessionFilter, top: int) -> dict:
        if self.queries:
            return self.queries.stats(flt, top)
        return self._get("/api/stats", {**vars(flt), "top": top})

    def sql(self, statement: str) -> dict:
        if self.queries:
            return self.queries.sql(statement)
        return self._get("/api/sql", body=statement.encode())


def render_table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def render_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
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
                         until=args.until, limit=args.limit)


def _live_api(args: argparse.Namespace, backend: Backend, flag: str) -> str:
    if backend.queries:
        raise SystemExit(f"shellspan-sink: {flag} needs the running sink's live stream: "
                         "query through --api (drop --store)")
    return backend.api


def cmd_sessions_list(args: argparse.Namespace) -> int:
    if args.watch:
        backend = Backend(args)
        api = _live_api(args, backend, "--watch")
        flt = _filter(args)
        return cli_live.watch_list(api, backend.token, vars(flt), lambda: backend.sessions(flt),
                                   lambda rows: render_table(rows, LIST_COLUMNS))
    rows = Backend(args).sessions(_filter(args))
    if args.format == "json":
        emit(json.dumps(rows, indent=2), args.output)
    elif args.format == "csv":
        emit(render_csv(rows, list(rows[0]) if rows else list(LIST_COLUMNS)), args.output)
    else:
        emit(render_table(rows, LIST_COLUMNS), args.output)
    return 0


def cmd_sessions_show(args: argparse.Namespace) -> int:
    if args.follow:
        backend = Backend(args)
        return cli_live.follow_session(_live_api(args, backend, "--follow"), backend.token,
                                       args.session_id, args.format)
    found = Backend(args).session(args.session_id)
    if found is None:
        print(f"shellspan-sink: no session {args.session_id}", file=sys.stderr)
        return 1
    if args.format == "json":
        emit(json.dumps(found, indent=2), args.output)
        return 0
    s = found["session"]
    head = [f"{k:18} {v}" for k, v in s.items() if k != "attributes" and v not in (None, "")]
    attrs = [f"  {k} = {v}" for k, v in sorted(s.get("attributes", {}).items())]
    text = "\n".join(head + ["attributes:"] + attrs + ["", render_table(found["commands"], COMMAND_COLUMNS)])
    emit(text, args.output)
    return 0


def cmd_sessions_stats(args: argparse.Namespace) -> int:
    stats = Backend(args).stats(_filter(args), args.top)
    if args.format == "json":
        emit(json.dumps(stats, indent=2), args.output)
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
        emit(json.dumps(rows, indent=2, default=str), args.output)
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
                       help="bearer token with the sessions:read scope, when the sink requires one")
        p.add_argument("--format", choices=formats, default="table")
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

    p = sub.add_parser("sql", help="run a read-only SQL query against the store")
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
