"""The web UI (static files served by the sink) and the API routes only the UI needs.

The UI is plain HTML, CSS and JavaScript modules under ``ui/``; it needs no build step and no
network beyond the sink itself. The session page's terminal player uses xterm.js, installed from
the npm registry by ``make setup`` (``npm ci`` in ``ui/vendor/``, pinned by its
``package-lock.json``) and served from there; without it the rest of the UI works and the
recording can be downloaded. It reads the same API as the CLI (``/api/sessions``, paged with
its keyset ``cursor``, ``/api/sessions/{id}``, ``/api/stats``) plus two read-only routes
registered here:

* ``GET /api/durations``: the ``/api/sessions`` filters; a session-duration histogram.
* ``GET /api/hosts-now``: the same filters; active sessions grouped by host (who is where now).

With sink authentication on, the static files stay readable (they hold no data) and every
``/api/*`` call made by the page carries the bearer token the user pasted into it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .analytics import AnalyticsQueries
from .answers import json_response as _json
from .queries import QueryError, SessionFilter, SessionQueries

UI_DIR = Path(__file__).with_name("ui")
# Scripts only from the sink itself (no inline script, no eval). Styles from the sink, plus the
# inline styles of the terminal player: xterm.js writes its theme as <style> elements and the
# colours of some cells as style attributes.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")
Runner = Callable[..., Awaitable[Any]]


def _filter(request: web.Request, *extra: str) -> tuple[SessionFilter, dict[str, str]]:
    params = dict(request.query)
    taken = {k: params.pop(k) for k in extra if k in params}
    return SessionFilter.from_mapping(params), taken


def register(app: web.Application, queries: SessionQueries, run: Runner) -> None:
    """Add the UI and its routes to the API application (`run` executes a blocking query)."""
    analytics = AnalyticsQueries(queries)

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIR / "index.html", headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    async def durations(request: web.Request) -> web.Response:
        flt, _ = _filter(request)
        return _json(await run(analytics.durations, flt))

    async def hosts_now(request: web.Request) -> web.Response:
        flt, _ = _filter(request)
        if flt.state not in (None, "active"):
            raise QueryError("hosts-now lists active sessions only")
        return _json(await run(analytics.hosts_now, flt))

    app.router.add_get("/", index)
    app.router.add_get("/index.html", index)
    app.router.add_static("/ui/", UI_DIR, show_index=False, follow_symlinks=False)
    app.router.add_get("/api/durations", durations)
    app.router.add_get("/api/hosts-now", hosts_now)
