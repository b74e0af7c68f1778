"""The CLI's commands for search, annotations, the access log and the MCP server:

    shellspan-sink commands search TEXT [--regex] [filters] [--json|--csv]
    shellspan-sink sessions annotate ID --tag T --note TEXT [--ticket --reason --reviewer --supersedes]
    shellspan-sink access-log [--subject --session --door --action --since --until]
    shellspan-sink mcp            (stdio; the running sink's API serves it over HTTP at /mcp)

Like the other query commands they talk to the running sink's API (or, given a server DSN,
query ClickHouse directly, recording reads in the access log themselves).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any

from .access_log import AccessFilter, Reader
from .cli import Backend, emit, render_csv, render_table
from .search import DEFAULT_LIMIT, CommandFilter

ACCESS_COLUMNS = ("time", "subject", "verified", "door", "action", "session_ids", "client_address",
                  "detail")
CSV_COLUMNS = ("start_time", "session_id", "seq", "user", "verified", "host_name", "shell_type",
               "cwd", "exit_code", "duration_ms", "command", "before_command", "after_command",
               "span_id")


def local_reader(door: str) -> Reader:
    """Who reads when a command queries ClickHouse itself: the local login, unverified."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = str(os.getuid())
    return Reader(login, False, door, "local")


def annotation_lines(annotations: list[dict[str, Any]]) -> list[str]:
    """A session's annotation history for `sessions show` (oldest first)."""
    lines = []
    for a in annotations:
        fields = [f"tags {', '.join(a['tags'])}" if a["tags"] else ""] + [
            f"{k} {a[k]}" for k in ("ticket", "reason", "reviewer", "note") if a.get(k)]
        state = f" (superseded by {a['superseded_by']})" if a.get("superseded_by") else ""
        supersedes = f", supersedes {a['supersedes']}" if a.get("supersedes") else ""
        who = f"{a['author']}{'' if a['author_verified'] else ' (unverified)'}"
        lines.append(f"  {a['created_at']} {who} [{a['annotation_id']}{supersedes}]{state}")
        lines += [f"      {f}" for f in fields if f]
    return ["annotations:"] + lines if lines else []


def _search(backend: Backend, flt: CommandFilter) -> dict[str, Any]:
    if backend.reading:
        return backend.reading.search(flt, local_reader(backend.door))
    params = {k: v for k, v in vars(flt).items() if v not in (None, "", False)}
    if flt.regex:
        params["regex"] = 1
    return backend._get("/api/commands", params)


def render_hits(hits: list[dict[str, Any]]) -> str:
    """Each hit like `grep -C1`: a heading, the command before, the hit (>), the one after."""
    if not hits:
        return "(no matching commands)"
    blocks = []
    for h in hits:
        exit_text = "exit ?" if h["exit_code"] is None else f"exit {h['exit_code']}"
        who = (h["user"] or "?") + (" (verified)" if h["verified"] else "") + (
            f" @ {h['host_name']}" if h["host_name"] else "")
        head = (f"{h['start_time']}  {who}  {h['shell_type']}  session {h['session_id']} "
                f"#{h['seq']}  {exit_text}  {h['duration_ms']} ms  {h['cwd']}")
        lines = [head]
        if h["before"]:
            lines.append(f"    {h['before']['seq']:>5}  {h['before']['command']}")
        lines.append(f"  > {h['seq']:>5}  {h['command']}")
        if h["after"]:
            lines.append(f"    {h['after']['seq']:>5}  {h['after']['command']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def cmd_commands_search(args: argparse.Namespace) -> int:
    flt = CommandFilter(q=args.text, regex=args.regex, user=args.user, host=args.host,
                        shell_type=args.shell_type, cwd=args.cwd, exit=args.exit,
                        since=args.since, until=args.until, session=args.session, tag=args.tag,
                        limit=args.limit, cursor=args.cursor)
    page = _search(Backend(args), flt)
    hits = page["commands"]
    if args.format == "json":
        emit(json.dumps(page, indent=2), args.output)
    elif args.format == "csv":
        rows = [{**h, "before_command": (h["before"] or {}).get("command"),
                 "after_command": (h["after"] or {}).get("command")} for h in hits]
        emit(render_csv(rows, list(CSV_COLUMNS)), args.output)
    else:
        emit(render_hits(hits), args.output)
    if page["next_cursor"] and args.format != "json":
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


def cmd_sessions_annotate(args: argparse.Namespace) -> int:
    payload = {"tags": args.tag or [], "note": args.note, "ticket": args.ticket,
               "reason": args.reason, "reviewer": args.reviewer, "supersedes": args.supersedes}
    payload = {k: v for k, v in payload.items() if v}
    backend = Backend(args)
    if backend.reading:
        from .annotations import NewAnnotation

        reader = local_reader(backend.door)
        stored = backend.reading.annotations.add(args.session_id,
                                                 NewAnnotation.from_payload(payload),
                                                 reader.subject, reader.verified)
    else:
        path = f"/api/sessions/{urllib.parse.quote(args.session_id, safe='')}/annotations"
        stored = backend._get(path, body=json.dumps(payload).encode())
    if stored is None:
        print(f"shellspan-sink: no session {args.session_id}", file=sys.stderr)
        return 1
    if args.format == "json":
        emit(json.dumps(stored, indent=2), args.output)
    else:
        emit("\n".join(annotation_lines([stored])[1:]), args.output)
    return 0


def cmd_access_log(args: argparse.Namespace) -> int:
    flt = AccessFilter(subject=args.subject, session=args.session, door=args.door,
                       action=args.action, since=args.since, until=args.until, limit=args.limit)
    backend = Backend(args)
    if backend.reading:
        events = backend.reading.access.list(flt)["events"]
    else:
        events = backend._get("/api/access-log", vars(flt))["events"]
    if args.format == "json":
        emit(json.dumps(events, indent=2), args.output)
    elif args.format == "csv":
        emit(render_csv(events, list(ACCESS_COLUMNS)), args.output)
    else:
        rows = [{**e, "session_ids": " ".join(e["session_ids"]),
                 "detail": json.dumps(e["detail"]) if e["detail"] else ""} for e in events]
        emit(render_table(rows, ACCESS_COLUMNS), args.output)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from .mcp_server import serve_stdio  # the MCP SDK loads only for this command

    return serve_stdio(args.api, args.token)


QueryArgs = Callable[..., None]


def add_commands(sub: argparse._SubParsersAction, sessions: argparse._SubParsersAction,
                 query_args: QueryArgs) -> None:
    """Add `commands search`, `sessions annotate`, `access-log` and `mcp` to the parser."""
    commands = sub.add_parser("commands", help="search commands across sessions").add_subparsers(
        dest="commands_command", required=True)
    p = commands.add_parser("search", help="commands containing TEXT, newest first",
                            description="Commands whose text contains TEXT (case-insensitive), "
                            "or matches it as an RE2 regular expression with --regex; each with "
                            "the command before and after it.")
    query_args(p)
    p.add_argument("text", nargs="?", default="", help="what to look for (empty: every command)")
    p.add_argument("--regex", action="store_true", help="TEXT is an RE2 regular expression")
    p.add_argument("--user", help="verified identity, else the user name the session claims")
    p.add_argument("--host")
    p.add_argument("--shell-type")
    p.add_argument("--cwd", help="run in this directory or below it")
    p.add_argument("--exit", help="an exit code, or 'failed'")
    p.add_argument("--since", help="ISO 8601, Unix seconds, or an age like 24h / 7d")
    p.add_argument("--until")
    p.add_argument("--session", help="one session id")
    p.add_argument("--tag", help="sessions carrying this annotation tag")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    p.add_argument("--cursor", help="continue after the page that printed this cursor")
    p.set_defaults(func=cmd_commands_search)

    p = sessions.add_parser("annotate", help="add tags and a note to a session (append-only)")
    query_args(p, ("table", "json"))
    p.add_argument("session_id")
    p.add_argument("--tag", action="append", help="a tag (repeat for more)")
    p.add_argument("--note", help="free text")
    p.add_argument("--ticket")
    p.add_argument("--reason")
    p.add_argument("--reviewer")
    p.add_argument("--supersedes", help="the annotation_id this one replaces")
    p.set_defaults(func=cmd_sessions_annotate)

    p = sub.add_parser("access-log", help="who read which session, when, through which door "
                       "(needs the sessions:audit scope)")
    query_args(p)
    p.add_argument("--subject", help="who read")
    p.add_argument("--session", help="reads of this session")
    p.add_argument("--door", help="api, cli, ui or mcp")
    p.add_argument("--action", help="show, search, recording, screen, excerpt or sql")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_access_log)

    p = sub.add_parser("mcp", help="serve the Model Context Protocol over stdio, answering "
                       "from the running sink's API")
    p.add_argument("--api", default=os.environ.get("SHELLSPAN_API", "http://127.0.0.1:8678"),
                   help="the running sink's API (default http://127.0.0.1:8678)")
    p.add_argument("--token", default=os.environ.get("SHELLSPAN_READ_TOKEN"),
                   help="bearer token with the sessions:read scope (env SHELLSPAN_READ_TOKEN)")
    p.set_defaults(func=cmd_mcp)
