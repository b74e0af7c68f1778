"""The Model Context Protocol's HTTP door: ``/mcp`` on the sink's API listener.

Requests need the bearer token and scope ``/api/*`` needs (``sessions:read``); on a loopback
listener, a Host or Origin naming another host is refused (DNS rebinding). Each request is handed
to the SDK's streamable-HTTP session manager (``mcp_server.http_manager``) as one ASGI exchange,
with the verified reader in its scope, so the tools' reads are recorded under the token's
subject. The SDK is loaded on the first request, not when the sink starts.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .access_log import Reader
from .auth import READ_SCOPE, AuthError, Verifier
from .reading import SessionReading

PATH = "/mcp"
DOOR = "mcp"
READER_KEY = "shellspan.reader"  # mcp_server.LocalSource reads the reader from here


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK_NAMES


def _rebinding_refusal(request: web.Request) -> str | None:
    """On a loopback listener, a Host or Origin naming anything else is a browser led there by
    DNS rebinding: refuse it. Elsewhere the bearer tokens are the guard, as for /api/*."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname or not _loopback(str(sockname[0])):
        return None
    host = urllib.parse.urlsplit(f"//{request.host or ''}").hostname or ""
    if not _loopback(host):
        return f"Host {request.host!r} is not this loopback listener"
    origin = request.headers.get("Origin")
    if origin and not _loopback(urllib.parse.urlsplit(origin).hostname or ""):
        return f"Origin {origin!r} is not allowed"
    return None


async def _asgi(request: web.Request, app: Callable[..., Awaitable[None]],
                extra: dict[str, Any]) -> web.StreamResponse:
    """Run one ASGI request/response exchange for an aiohttp request."""
    body = await request.read()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method, "scheme": request.scheme, "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(), "root_path": "",
        "query_string": request.query_string.encode(),
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": (request.remote or "", 0), "server": None, **extra,
    }
    finished = asyncio.Event()
    sent_body = False
    response: web.StreamResponse | None = None

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for k, v in message.get("headers", []):
                response.headers.add(k.decode("latin-1"), v.decode("latin-1"))
            await response.prepare(request)
        elif message["type"] == "http.response.body" and response is not None:
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body"):
                await response.write_eof()
                finished.set()

    try:
        await app(scope, receive, send)
    finally:
        finished.set()
    return response if response is not None else web.Response(status=500)


def mount(app: web.Application, reading: SessionReading, verifier: Verifier,
          run: Callable[..., Awaitable[Any]]) -> None:
    """Serve the MCP tools over streamable HTTP at /mcp on the API application."""
    manager: Any = None
    starting = asyncio.Lock()
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []

    async def keep_running(ready: asyncio.Event) -> None:
        # The manager's task group is entered and left by this one task, as anyio requires.
        async with manager.run():
            ready.set()
            await stop.wait()

    async def started() -> Any:
        nonlocal manager
        async with starting:
            if manager is None:
                module = await asyncio.to_thread(importlib.import_module,
                                                 f"{__package__}.mcp_server")
                manager = module.http_manager(reading, run)
                ready = asyncio.Event()
                tasks.append(asyncio.create_task(keep_running(ready)))
                await ready.wait()
        return manager

    async def finish(_app: web.Application) -> None:
        stop.set()
        await asyncio.gather(*tasks)

    async def handle(request: web.Request) -> web.StreamResponse:
        if refusal := _rebinding_refusal(request):
            return web.json_response({"error": refusal}, status=403)
        authorization = request.headers.get("Authorization")
        try:
            verifier.check_scope(authorization, READ_SCOPE)
        except AuthError as exc:
            return web.json_response({"error": str(exc)}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="shellspan"'})
        subject, verified = verifier.subject(authorization)
        reader = Reader(subject, verified, DOOR, request.remote or "")
        sdk = await started()
        return await _asgi(request, sdk.handle_request, {READER_KEY: reader})

    app.on_cleanup.append(finish)
    app.router.add_route("*", PATH, handle)
