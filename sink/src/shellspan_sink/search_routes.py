"""API routes for command search, annotations, the access log and the MCP endpoint.

* ``GET /api/commands``: command search (``q``, ``regex``, filters, ``cursor``); recorded.
* ``GET|POST /api/sessions/{id}/annotations``: a session's annotation history; add one
  (scope ``sessions:annotate``).
* ``GET /api/access-log``: who read which session (scope ``sessions:audit``); reads of the
  recording routes (``/api/sessions/{id}/recording|screen|excerpt``) and statements through the
  SQL door (``/api/sql``) are recorded here too.
* ``/mcp``: the Model Context Protocol over streamable HTTP (``mcp_http``), behind the same
  bearer tokens (scope ``sessions:read``).

With authentication on, every ``/api/*`` route also needs ``sessions:read`` (checked by the API's
middleware).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import mcp_http
from .access_log import (
    CLIENT_HEADER,
    FOLLOW,
    RECORDING_READS,
    AccessFilter,
    AccessLog,
    Reader,
    door_of,
)
from .annotations import NewAnnotation
from .answers import json_response as _json
from .auth import ANNOTATE_SCOPE, AUDIT_SCOPE, Verifier
from .queries import QueryError, SessionQueries
from .reading import SessionReading
from .search import CommandFilter

Runner = Callable[..., Awaitable[Any]]
MAX_ANNOTATION_BODY = 64 * 1024
SQL_PATH = "/api/sql"
_RECORDING_READ = re.compile(rf"^/api/sessions/([^/]+)/({'|'.join(RECORDING_READS)})$")
_FOLLOW_READ = re.compile(r"^/api/sessions/([^/]+)/events$")


def reader_of(request: web.Request, verifier: Verifier, door: str | None = None) -> Reader:
    """Who makes `request` (already authorized): the verified subject, the door, the address."""
    subject, verified = verifier.subject(request.headers.get("Authorization"))
    return Reader(subject, verified, door or door_of(request.headers.get(CLIENT_HEADER)),
                  request.remote or "")


def register(app: web.Application, queries: SessionQueries, verifier: Verifier, run: Runner,
             journal_dir: Path) -> SessionReading:
    """Add the routes to the API application; returns the reader the session route uses too."""
    access = AccessLog(queries.store, journal_dir)
    reading = SessionReading(queries, access)

    async def commands(request: web.Request) -> web.Response:
        flt = CommandFilter.from_mapping(dict(request.query))
        return _json(await run(reading.search, flt, reader_of(request, verifier)))

    async def list_annotations(request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"].lower()
        if not await run(reading.annotations.session_exists, session_id):
            return _json({"error": "no such session"}, 404)
        notes = await run(reading.annotations.for_session, session_id)
        return _json(notes.as_dict())

    async def add_annotation(request: web.Request) -> web.Response:
        verifier.check_scope(request.headers.get("Authorization"), ANNOTATE_SCOPE)
        if request.content_length is not None and request.content_length > MAX_ANNOTATION_BODY:
            raise QueryError(f"the body exceeds {MAX_ANNOTATION_BODY} bytes")
        body = await request.content.read(MAX_ANNOTATION_BODY + 1)
        if len(body) > MAX_ANNOTATION_BODY:
            raise QueryError(f"the body exceeds {MAX_ANNOTATION_BODY} bytes")
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            raise QueryError(f"the body is not JSON: {exc}") from None
        new = NewAnnotation.from_payload(payload)
        author, verified = verifier.subject(request.headers.get("Authorization"))
        stored = await run(reading.annotations.add, request.match_info["session_id"], new,
                           author, verified)
        if stored is None:
            return _json({"error": "no such session"}, 404)
        return _json(stored, 201)

    async def access_log(request: web.Request) -> web.Response:
        verifier.check_scope(request.headers.get("Authorization"), AUDIT_SCOPE)
        flt = AccessFilter.from_mapping(dict(request.query))
        return _json(await run(access.list, flt))

    @web.middleware
    async def record_other_reads(request: web.Request, handler):
        """Reads the routes of other modules serve. A terminal recording, its screens and
        excerpts are a session's commands too: recorded before the route answers (it streams,
        so not after); so is following a session's live stream. A statement through the SQL
        door can read any session: recorded once it has an answer, before the answer leaves (a
        refused one read nothing)."""
        if request.method == "GET" and (m := _RECORDING_READ.match(request.path)):
            await run(reading.record_recording_read, m.group(1), m.group(2), dict(request.query),
                      reader_of(request, verifier))
        elif request.method == "GET" and (m := _FOLLOW_READ.match(request.path)):
            await run(reading.record_recording_read, m.group(1), FOLLOW, {},
                      reader_of(request, verifier))
        response = await handler(request)
        if request.method == "POST" and request.path == SQL_PATH and response.status == 200:
            await run(reading.record_sql, (await request.text()).strip(),
                      reader_of(request, verifier))
        return response

    async def start_access_log(_app: web.Application) -> None:
        access.start()

    async def stop_access_log(_app: web.Application) -> None:
        await run(access.stop)

    app.router.add_get("/api/commands", commands)
    app.router.add_get("/api/sessions/{session_id}/annotations", list_annotations)
    app.router.add_post("/api/sessions/{session_id}/annotations", add_annotation)
    app.router.add_get("/api/access-log", access_log)
    app.middlewares.append(record_other_reads)  # inside the API's auth and error handling
    mcp_http.mount(app, reading, verifier, run)
    app.on_startup.append(start_access_log)
    app.on_cleanup.insert(0, stop_access_log)  # before the query pool shuts down
    return reading
