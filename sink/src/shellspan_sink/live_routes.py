"""The live API, as Server-Sent Events (``text/event-stream``):

* ``GET /api/sessions/{session_id}/events``: one session as it goes on. Events: ``session``
  (the session as it is when the stream opens, attributes included), ``command`` (each command,
  in the session's order, as it is stored), ``state`` (active <-> abandoned), ``end`` (the
  session ended; the stream then closes). Every event's id is a resume point: reconnecting with
  ``Last-Event-ID`` sends only what the client lacks. 404 for an unknown session.
* ``GET /api/changes``: the sessions list as it changes. Takes the filters of
  ``/api/sessions`` (but ``limit`` and ``cursor``); events: ``ready`` (the stream is current;
  load the list now, nothing after this is missed), ``sessions`` (``{"sessions": [rows]}``: the
  rows, as the list shows them, of sessions that started, received commands, changed state or
  ended), ``reset`` (resumed from too long ago: load the list again). The ``state`` filter is
  for the client to apply, so that it also learns when a row it shows leaves that state.

Both send a comment line (``: keep-alive``) when nothing else was sent for a while, answer 503
with Retry-After when every stream slot is taken, and need the same token as the rest of
``/api/``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from .live import ChangesWatcher, LiveHub, SessionFollower, Stream, TooManyStreams
from .queries import QueryError, SessionFilter, SessionQueries

SESSION_ID_CHARS = set("0123456789abcdef")


def _busy(exc: TooManyStreams) -> web.Response:
    return web.Response(text=json.dumps({"error": str(exc)}), status=503,
                        content_type="application/json", headers={"Retry-After": "5"})


async def _pump(request: web.Request, stream: Stream, heartbeat_s: float) -> web.StreamResponse:
    """Write the stream's events to the client until it ends or the client goes away."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    try:
        await response.write(b"retry: 2000\n\n")
        last_write = time.monotonic()
        while True:
            try:
                event = await asyncio.wait_for(stream.queue.get(), min(heartbeat_s, 1.0))
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                if time.monotonic() - last_write >= heartbeat_s:
                    await response.write(b": keep-alive\n\n")
                    last_write = time.monotonic()
                continue
            if event is None:
                break
            await response.write(event.encode())
            last_write = time.monotonic()
    except (ConnectionResetError, ConnectionError):
        pass
    return response


def register(app: web.Application, queries: SessionQueries, run: Any, hub: LiveHub) -> None:
    """Add the live routes to the API application (`run` executes a blocking query)."""
    heartbeat_s = hub.limits.heartbeat_s

    async def session_events(request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["session_id"].lower()
        if len(session_id) != 32 or not set(session_id) <= SESSION_ID_CHARS:
            raise QueryError("a session id is 32 hexadecimal characters")
        try:
            follower = hub.open(SessionFollower(session_id, request.headers.get("Last-Event-ID")))
        except TooManyStreams as exc:
            return _busy(exc)
        try:
            found = await run(queries.get_session, session_id)
            if found is None:
                return web.Response(text=json.dumps({"error": "no such session"}), status=404,
                                    content_type="application/json")
            follower.start(found)
            hub.notify()  # a round now, for what was stored while the snapshot was read
            return await _pump(request, follower, heartbeat_s)
        finally:
            hub.close(follower)

    async def changes(request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        flt = SessionFilter.from_mapping(params)
        if flt.cursor:
            raise QueryError("the changes stream takes no cursor")
        flt.clauses(queries.abandon_after, queries.db)  # the same checks as the list's (400 if bad)
        try:
            watcher = hub.open(ChangesWatcher(flt, request.headers.get("Last-Event-ID")))
        except TooManyStreams as exc:
            return _busy(exc)
        try:
            await hub.start_watcher(watcher)
            return await _pump(request, watcher, heartbeat_s)
        finally:
            hub.close(watcher)

    app.router.add_get("/api/sessions/{session_id}/events", session_events)
    app.router.add_get("/api/changes", changes)
