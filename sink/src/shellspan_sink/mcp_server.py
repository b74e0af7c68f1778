"""The Model Context Protocol server: an assistant asks shellspan what an admin would.

Tools: ``list_sessions``, ``show_session``, ``search_commands``, ``session_stats`` and
``recording_excerpt``. Every result is bounded (rows per call, characters per command and per
result) and carries what the API carries: command lines and terminal output as the shell host
redacted them, nothing more. Reading a session's commands (``show_session``,
``search_commands``, ``recording_excerpt``) is recorded in the access log with door ``mcp``.

Two transports, one set of tools over a ``Source``:

* streamable HTTP, mounted on the sink's API listener at ``/mcp`` (``mcp_http``): the same
  bearer tokens and the ``sessions:read`` scope as ``/api/*``; queries run in the sink's own
  process;
* stdio (``shellspan-sink mcp``): the tools answer from the running sink's API (the embedded
  store belongs to the sink process), with the token in ``SHELLSPAN_READ_TOKEN``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field

from .access_log import Reader
from .api_client import ApiClient, ApiError
from .mcp_http import DOOR, READER_KEY
from .queries import QueryError, SessionFilter, SessionQueries
from .reading import SessionReading
from .recordings import NotFound, RecordingQueries
from .search import CommandFilter
from .store import StoreError

MAX_SESSIONS = 100  # rows per list_sessions call
MAX_HITS = 100  # rows per search_commands call
MAX_COMMANDS = 500  # commands per show_session call
MAX_TOP = 20
MAX_EXCERPT_LINES = 500  # lines of terminal output per recording_excerpt call
MAX_EXCERPT_CHARS = 50_000
MAX_COMMAND_CHARS = 2000  # one command line (longer ones are cut and marked)
MAX_RESULT_CHARS = 200_000  # one tool result, as JSON
INSTRUCTIONS = """shellspan records interactive shell sessions (bash, zsh, Python REPLs, admin
shells): who ran which command, where, when, and how it ended. Use search_commands to find who
ran something (substring by default, regex=true for RE2), show_session for one session's
commands in order, list_sessions to browse, session_stats for aggregates. Command lines were
redacted on the shell host; a 'redacted' flag says a secret was replaced."""


class Source(Protocol):
    """Where the tools' answers come from: the sink's own queries, or its API."""

    async def list_sessions(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]: ...
    async def show_session(self, session_id: str, ctx: Context) -> dict[str, Any] | None: ...
    async def search_commands(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]: ...
    async def session_stats(self, params: dict[str, Any], top: int,
                            ctx: Context) -> dict[str, Any]: ...
    async def recording_excerpt(self, session_id: str, seq: int, max_lines: int, max_chars: int,
                                ctx: Context) -> dict[str, Any] | None: ...


class LocalSource:
    """In the sink's process (the HTTP mount): queries run in its query thread."""

    def __init__(self, reading: SessionReading, run: Callable[..., Awaitable[Any]]) -> None:
        self.reading = reading
        self.queries: SessionQueries = reading.queries
        self.recordings = RecordingQueries(reading.queries.store)
        self.run = run

    @staticmethod
    def reader(ctx: Context) -> Reader:
        scope = getattr(ctx.request_context.request, "scope", None) or {}
        reader = scope.get(READER_KEY)
        if not isinstance(reader, Reader):
            raise ToolError("this request did not come through the sink's /mcp route")
        return reader

    async def list_sessions(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return await self.run(self.queries.list_sessions, SessionFilter.from_mapping(params))

    async def show_session(self, session_id: str, ctx: Context) -> dict[str, Any] | None:
        return await self.run(self.reading.show, session_id, self.reader(ctx))

    async def search_commands(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return await self.run(self.reading.search, CommandFilter.from_mapping(params),
                              self.reader(ctx))

    async def session_stats(self, params: dict[str, Any], top: int,
                            ctx: Context) -> dict[str, Any]:
        return await self.run(self.queries.stats, SessionFilter.from_mapping(params), top)

    async def recording_excerpt(self, session_id: str, seq: int, max_lines: int, max_chars: int,
                                ctx: Context) -> dict[str, Any] | None:
        detail = {"seq": seq, "max_lines": max_lines, "max_chars": max_chars}
        if not await self.run(self.reading.record_recording_read, session_id, "excerpt", detail,
                              self.reader(ctx)):
            return None
        try:  # the emulator's replay is CPU work: off the query thread, as the API does it
            return await anyio.to_thread.run_sync(self.recordings.excerpt, session_id, seq,
                                                  max_lines, max_chars)
        except NotFound:
            return None


class ApiSource:
    """Outside the sink (stdio): the tools ask the running sink's API, which records the reads."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def _call(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await anyio.to_thread.run_sync(self.client.call, path, params)

    async def list_sessions(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return await self._call("/api/sessions", params)

    async def show_session(self, session_id: str, ctx: Context) -> dict[str, Any] | None:
        return await self._call(f"/api/sessions/{session_id}")

    async def search_commands(self, params: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return await self._call("/api/commands", params)

    async def session_stats(self, params: dict[str, Any], top: int,
                            ctx: Context) -> dict[str, Any]:
        return await self._call("/api/stats", {**params, "top": top})

    async def recording_excerpt(self, session_id: str, seq: int, max_lines: int, max_chars: int,
                                ctx: Context) -> dict[str, Any] | None:
        return await self._call(f"/api/sessions/{session_id}/excerpt",
                                {"seq": seq, "max_lines": max_lines, "max_chars": max_chars})


# --- bounding results ----------------------------------------------------------------------------

def _cut(text: str | None) -> tuple[str | None, bool]:
    if text is None or len(text) <= MAX_COMMAND_CHARS:
        return text, False
    return text[:MAX_COMMAND_CHARS] + "…", True


def _cut_command(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["command"], cut = _cut(row.get("command"))
    if cut:
        row["command_truncated"] = True
    for side in ("before", "after"):
        if row.get(side):
            row[side] = {**row[side], "command": _cut(row[side]["command"])[0]}
    return row


def bounded(result: dict[str, Any], rows_key: str) -> dict[str, Any]:
    """`result` with its rows cut so the whole stays under MAX_RESULT_CHARS as JSON."""
    rows = result.get(rows_key) or []
    size = len(json.dumps({k: v for k, v in result.items() if k != rows_key}, default=str))
    kept = 0
    for row in rows:
        size += len(json.dumps(row, default=str)) + 2
        if size > MAX_RESULT_CHARS:
            break
        kept += 1
    if kept < len(rows):
        result = {**result, rows_key: rows[:kept], "truncated": True,
                  "note": f"cut to {kept} of {len(rows)} rows to stay under "
                          f"{MAX_RESULT_CHARS} characters; ask for fewer or page on"}
    return result


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, "")}


async def _answer(call: Awaitable[Any]) -> Any:
    """The source's answer; a bad argument or an unavailable sink becomes a tool error."""
    try:
        return await call
    except (QueryError, ValueError) as exc:
        raise ToolError(str(exc)) from exc
    except (ApiError, StoreError) as exc:
        raise ToolError(f"the sink could not answer: {exc}") from exc


# --- the tools -----------------------------------------------------------------------------------

Text = Annotated[str | None, Field(default=None, max_length=1024)]


def build_server(source: Source) -> MCPServer:
    server = MCPServer("shellspan", instructions=INSTRUCTIONS)

    @server.tool()
    async def list_sessions(
            ctx: Context, user: Text = None, host: Text = None, shell_type: Text = None,
            component: Text = None,
            state: Annotated[str | None, Field(description="active, ended or abandoned")] = None,
            since: Annotated[str | None, Field(description="ISO 8601, Unix seconds or an age "
                                                           "like 24h, 7d")] = None,
            until: Text = None, tag: Text = None,
            limit: Annotated[int, Field(ge=1, le=MAX_SESSIONS)] = 20,
            cursor: Annotated[str | None, Field(description="next_cursor of a previous page")] = None,
    ) -> dict[str, Any]:
        """Recorded shell sessions, newest first: who, where, which shell, state, duration,
        command and failure counts."""
        page = await _answer(source.list_sessions(_params(
            user=user, host=host, shell_type=shell_type, component=component, state=state,
            since=since, until=until, tag=tag, limit=limit, cursor=cursor), ctx))
        return bounded(page, "sessions")

    @server.tool()
    async def show_session(
            ctx: Context,
            session_id: Annotated[str, Field(description="32 hexadecimal characters")],
            from_seq: Annotated[int, Field(ge=0, description="first command number shown")] = 0,
            limit: Annotated[int, Field(ge=1, le=MAX_COMMANDS)] = 200,
    ) -> dict[str, Any]:
        """One session: its metadata, tags and annotations, and its commands in order (each with
        time, duration, working directory and exit code), from `from_seq` on."""
        found = await _answer(source.show_session(session_id, ctx))
        if found is None:
            raise ToolError(f"no session {session_id}")
        commands = [c for c in found["commands"] if c["seq"] >= from_seq]
        shown = [_cut_command(c) for c in commands[:limit]]
        result = {"session": found["session"], "annotations": found.get("annotations", []),
                  "commands_total": len(found["commands"]), "commands": shown,
                  "next_from_seq": commands[limit]["seq"] if len(commands) > limit else None}
        return bounded(result, "commands")

    @server.tool()
    async def search_commands(
            ctx: Context,
            q: Annotated[str, Field(max_length=1024, description=(
                "text to find (case-insensitive substring), or an RE2 regular expression with "
                "regex=true; empty: every command"))] = "",
            regex: bool = False, user: Text = None, host: Text = None, shell_type: Text = None,
            cwd: Annotated[str | None, Field(description="this directory or below")] = None,
            exit: Annotated[str | None, Field(description="an exit code, or 'failed'")] = None,
            since: Text = None, until: Text = None,
            session: Annotated[str | None, Field(description="one session id")] = None,
            tag: Text = None, limit: Annotated[int, Field(ge=1, le=MAX_HITS)] = 20,
            cursor: Text = None,
    ) -> dict[str, Any]:
        """Commands across all sessions, newest first, each with its session, user (verified
        identity first), host, working directory, exit code, duration and the commands just
        before and after it."""
        page = await _answer(source.search_commands(_params(
            q=q, regex=1 if regex else None, user=user, host=host, shell_type=shell_type,
            cwd=cwd, exit=exit, since=since, until=until, session=session, tag=tag, limit=limit,
            cursor=cursor), ctx))
        page = {**page, "commands": [_cut_command(c) for c in page["commands"]]}
        return bounded(page, "commands")

    @server.tool()
    async def session_stats(
            ctx: Context, user: Text = None, host: Text = None, shell_type: Text = None,
            component: Text = None, since: Text = None, until: Text = None, tag: Text = None,
            top: Annotated[int, Field(ge=1, le=MAX_TOP)] = 10,
    ) -> dict[str, Any]:
        """Counts (sessions, active, commands, failures), duration percentiles, busiest hours,
        and the top users, hosts, shells and commands."""
        stats = await _answer(source.session_stats(_params(
            user=user, host=host, shell_type=shell_type, component=component, since=since,
            until=until, tag=tag), top, ctx))
        return bounded(stats, "busiest_hours")

    @server.tool()
    async def recording_excerpt(
            ctx: Context,
            session_id: Annotated[str, Field(description="32 hexadecimal characters")],
            seq: Annotated[int, Field(ge=1, description="the command's number in its session")],
            max_lines: Annotated[int, Field(ge=1, le=MAX_EXCERPT_LINES)] = 100,
            max_chars: Annotated[int, Field(ge=1, le=MAX_EXCERPT_CHARS)] = 8000,
    ) -> dict[str, Any]:
        """What one command printed in its terminal, as plain text (as the user saw it: escape
        sequences interpreted), its last lines; for sessions recorded with `shellspan record`."""
        found = await _answer(source.recording_excerpt(session_id, seq, max_lines, max_chars, ctx))
        if found is None:
            raise ToolError(f"no recording of command {seq} in session {session_id}")
        return found

    return server


# --- stdio ---------------------------------------------------------------------------------------

def serve_stdio(api: str, token: str | None) -> int:
    """`shellspan-sink mcp`: serve the tools over stdio, answering from the sink's API."""
    server = build_server(ApiSource(ApiClient(api, token, DOOR)))
    anyio.run(server.run_stdio_async)
    return 0


# --- streamable HTTP: the session manager the API's /mcp route hands requests to (mcp_http) ------

def http_manager(reading: SessionReading, run: Callable[..., Awaitable[Any]]):
    """The SDK's session manager for the tools answered in the sink's own process: stateless JSON
    exchanges (every request carries its own bearer token, no session affinity). DNS-rebinding
    checks are mcp_http's (they depend on the listener), not the SDK's."""
    server = build_server(LocalSource(reading, run))
    server.streamable_http_app(stateless_http=True, json_response=True,
                               transport_security=TransportSecuritySettings(
                                   enable_dns_rebinding_protection=False))
    return server.session_manager
