"""The API routes of terminal recordings (under the same read scope as the rest of ``/api``):

* ``GET /api/sessions/{id}/recording``: the asciicast v2 file (``application/x-asciicast``),
  streamed as it is read; ``from_seq=N`` starts at command N, ``from=TIME`` at a time (ISO 8601,
  Unix seconds or an age such as ``15m``), ``idle_time_limit=S`` asks players to shorten pauses.
* ``GET /api/sessions/{id}/screen?seq=N``: the screen when command N ended, as text lines
  (``cells=1``: with colours and attributes).
* ``GET /api/sessions/{id}/excerpt?seq=N``: what command N printed, as plain text, bounded
  (``max_lines``, ``max_chars``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from . import asciicast
from .queries import QueryError
from .recordings import NotFound, RecordingQueries

Runner = Callable[..., Awaitable[Any]]


def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return default
    if not value.isdigit() or len(value) > 18:
        raise QueryError(f"{name} must be a whole number, not {value[:40]!r}")
    return int(value)


def _seq(request: web.Request) -> int:
    seq = _int(request, "seq")
    if seq is None:
        raise QueryError("seq (the command's number) is required")
    return seq


def _not_found(exc: NotFound) -> web.Response:
    return web.Response(text=json.dumps({"error": str(exc)}), status=404,
                        content_type="application/json")


def register(app: web.Application, recordings: RecordingQueries, run: Runner) -> None:
    # Screens and excerpts replay records through the emulator (CPU, up to seconds for a long
    # recording): on a thread of their own, so the API's query thread keeps answering meanwhile.
    replay_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-replay")

    async def replay(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(replay_pool, fn, *args)

    async def recording(request: web.Request) -> web.StreamResponse:
        from_seq = _int(request, "from_seq")
        idle = request.query.get("idle_time_limit")
        try:
            idle_limit = float(idle) if idle else None
        except ValueError:
            raise QueryError("idle_time_limit must be a number of seconds") from None
        if idle_limit is not None and not 0 < idle_limit < 86400:
            raise QueryError("idle_time_limit must be between 0 and 86400 seconds")
        try:
            stream = await run(recordings.asciicast, request.match_info["session_id"], from_seq,
                               request.query.get("from") or None, idle_limit)
        except NotFound as exc:
            return _not_found(exc)
        response = web.StreamResponse(headers={
            "Content-Type": f"{asciicast.MEDIA_TYPE}; charset=utf-8",
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        if request.query.get("download"):
            response.headers["Content-Disposition"] = \
                f'attachment; filename="{stream.session_id}.cast"'
        await response.prepare(request)
        await response.write(stream.head.encode())
        while (chunk := await run(stream.next_chunk)) is not None:
            await response.write(chunk.encode())
        await response.write_eof()
        return response

    async def screen(request: web.Request) -> web.Response:
        try:
            found = await replay(recordings.screen, request.match_info["session_id"], _seq(request),
                              request.query.get("cells") in ("1", "true"))
        except NotFound as exc:
            return _not_found(exc)
        return web.json_response(found)

    async def excerpt(request: web.Request) -> web.Response:
        try:
            found = await replay(recordings.excerpt, request.match_info["session_id"], _seq(request),
                              _int(request, "max_lines", 200), _int(request, "max_chars", 16_000))
        except NotFound as exc:
            return _not_found(exc)
        return web.json_response(found)

    app.on_cleanup.append(lambda _app: asyncio.get_running_loop().run_in_executor(
        None, replay_pool.shutdown))
    app.router.add_get("/api/sessions/{session_id}/recording", recording)
    app.router.add_get("/api/sessions/{session_id}/screen", screen)
    app.router.add_get("/api/sessions/{session_id}/excerpt", excerpt)
