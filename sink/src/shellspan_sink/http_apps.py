"""The two HTTP listeners: OTLP/HTTP in (port 4318) and the query API (port 8678)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import ClientError, web

from . import live_routes, otlp, recording_routes, search_routes, ui_routes
from .answers import json_response as _json
from .auth import READ_SCOPE, SQL_SCOPE, AuthError, Verifier
from .inflight import InflightBytes
from .ingest import Ingest
from .live import LiveHub, LiveLimits
from .outcomes import REFUSALS, Outcome, Refused, http_headers, refusal
from .queries import QueryError, SessionFilter, SessionQueries
from .recordings import RecordingQueries
from .rollups import Refresher, Rollups
from .sqlgate import SqlGate
from .store import Store, StoreError
from .wal import WriteAheadLog

log = logging.getLogger(__name__)


def _refusal_response(content_type: str, refused: Refused) -> web.Response:
    reply_type = content_type if content_type in otlp.CONTENT_TYPES else otlp.JSON
    answer = refused.outcome.answer
    return web.Response(status=answer.http_status, content_type=reply_type,
                        body=otlp.encode_status(reply_type, answer.grpc_code.value[0],
                                                refused.message),
                        headers=http_headers(refused.outcome))


def otlp_app(ingests: Sequence[Ingest], verifier: Verifier, inflight: InflightBytes, *,
             ack_timeout: float, body_timeout: float) -> web.Application:
    """`POST /v1/traces` and `POST /v1/logs`: one route per ingest (signal), the same checks,
    one bound on the bytes in flight."""
    max_body = ingests[0].limits.max_body_bytes
    # One thread: the Python encoder holds the GIL (more threads only contend), and with the
    # compiled encoder a second thread measured no faster (bench/bench_ingest.py).
    encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otlp-encode")
    app = web.Application(client_max_size=max_body)
    for ingest in ingests:
        app.router.add_post(ingest.signal.path, _exporter(
            ingest, verifier, inflight, encoder, max_body, ack_timeout, body_timeout))
    return app


def _exporter(ingest: Ingest, verifier: Verifier, inflight: InflightBytes,
              encoder: ThreadPoolExecutor, max_body: int, ack_timeout: float,
              body_timeout: float):
    signal = ingest.signal

    async def export(request: web.Request) -> web.Response:
        content_type = otlp.media_type(request.content_type)
        try:
            if content_type not in otlp.CONTENT_TYPES:
                raise Refused(Outcome.UNSUPPORTED_MEDIA_TYPE,
                              f"unsupported Content-Type {content_type!r}: "
                              f"use {otlp.PROTOBUF} or {otlp.JSON}")
            if request.content_length is not None and request.content_length > max_body:
                raise Refused(Outcome.TOO_LARGE, f"body exceeds {max_body} bytes")
            identity = verifier.identity(request.headers.get("Authorization"))
            ingest.wal.check_room()
            # A body of unknown length (chunked) may be as large as the largest one allowed.
            with inflight.hold(request.content_length if request.content_length is not None
                               else max_body):
                body = await _read_body(request, max_body, body_timeout)
                accepted = await asyncio.get_running_loop().run_in_executor(
                    encoder, _decode_and_accept, ingest, body, content_type,
                    request.headers.get("Content-Encoding"), max_body * 8, identity)
                del body
                await asyncio.wait_for(asyncio.wrap_future(accepted.durable), ack_timeout)
        except REFUSALS as exc:
            return _refusal_response(content_type, refusal(exc))
        return web.Response(body=otlp.encode_response(content_type, accepted.rejected,
                                                      accepted.message, signal),
                            content_type=content_type)

    return export


async def _read_body(request: web.Request, max_body: int, timeout: float) -> bytes:
    """The whole body, within `timeout` seconds (a body that trickles in would hold its share of
    the in-flight bound for as long as the client likes).

    The timeout cancels this task rather than wrapping the read in a task of its own
    (asyncio.wait_for): that task would keep a failed read's exception, and with it the partial
    body, in a reference cycle.
    """
    task = asyncio.current_task()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await request.read()
    except asyncio.CancelledError:
        if not expired:
            raise
        if hasattr(task, "uncancel"):
            task.uncancel()
        raise Refused(Outcome.BODY_TIMEOUT, f"the body did not arrive within {timeout:g} s") \
            from None
    except web.HTTPRequestEntityTooLarge:
        raise Refused(Outcome.TOO_LARGE, f"body exceeds {max_body} bytes") from None
    except (ConnectionError, ClientError):  # the client hung up: nobody reads the answer
        raise Refused(Outcome.BAD_REQUEST, "the connection closed before the body was complete") \
            from None
    finally:
        timer.cancel()


def _decode_and_accept(ingest: Ingest, body: bytes, content_type: str, encoding: str | None,
                       max_inflated: int, identity: dict[str, str] | None):
    try:
        raw = otlp.decompress(body, encoding, max_inflated)
        request = otlp.to_protobuf(raw, content_type, ingest.signal)
    except REFUSALS:
        raise
    except Exception as exc:  # a decoder path no test has found yet: still the body's fault
        log.exception("undecodable OTLP/HTTP body (%d bytes, %s)", len(body), content_type)
        raise Refused(Outcome.BAD_REQUEST, f"undecodable body: {type(exc).__name__}") from exc
    return ingest.accept(request, identity)


def api_app(store: Store, queries: SessionQueries, wal: WriteAheadLog, ingest: Ingest,
            verifier: Verifier, logs: Ingest, sql_gate: SqlGate, inflight: InflightBytes,
            live: LiveLimits | None = None, rollup_interval: float = 5.0) -> web.Application:
    # The store serializes calls anyway; one thread keeps queries off the event loop.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-query")
    # Analysts' SQL runs on its own client and thread: a slow statement holds up neither the
    # writer nor the other API calls.
    sql_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-sql")

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # Background work that follows the inserts: the live streams and the stats' rollups.
    hub = LiveHub(queries, run, live or LiveLimits())
    refresher = Refresher(Rollups(queries), run, min_interval=rollup_interval)
    wal.listeners += [hub.notify, refresher.notify]
    ingest.followed = hub.followed

    @web.middleware
    async def errors(request: web.Request, handler):
        try:
            if request.path.startswith("/api/"):  # /health and the UI's static files stay open
                verifier.check_scope(request.headers.get("Authorization"), READ_SCOPE)
            return await handler(request)
        except AuthError as exc:
            return web.Response(text=json.dumps({"error": str(exc)}), status=401,
                                content_type="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="shellspan"'})
        except QueryError as exc:
            return _json({"error": str(exc)}, 400)
        except StoreError as exc:
            log.warning("query failed: %s", exc)
            return _json({"error": f"store error: {exc}"}, 503)

    async def health(_request: web.Request) -> web.Response:
        """200 and "ok", or 503 and "degraded" with the problems that need someone."""
        store_state = await run(store.ping)
        wal_state, logs_wal_state = wal.state(), logs.wal.state()
        problems = []
        if not store_state["ok"]:
            problems.append(f"the store does not answer: {store_state.get('error')}")
        for state, unit in ((wal_state, ingest.signal.unit), (logs_wal_state, logs.signal.unit)):
            quarantined = state["quarantine"]
            if quarantined["records"]:
                problems.append(f"{quarantined['records']} WAL record(s) ({quarantined['spans']} "
                                f"{unit}s) refused by the store are quarantined in "
                                f"{quarantined['dir']}")
        body = {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "store": store_state,
            "wal": wal_state,
            "inflight": inflight.state(),
            "encoder": ingest.encoder,
            "auth_mode": verifier.mode,
            "received_spans": ingest.received,
            "rejected_spans": ingest.rejected,
            # refused because their session belongs to another identity (each is logged)
            "foreign_spans": ingest.foreign,
            "foreign_requests": ingest.foreign_requests,
            "logs": {"wal": logs_wal_state, "received_log_records": logs.received,
                     "rejected_log_records": logs.rejected,
                     "foreign_log_records": logs.foreign},
            "live": hub.state(),
            "rollups": refresher.state(),
        }
        return _json(body, 503 if problems else 200)

    async def sessions(request: web.Request) -> web.Response:
        flt = SessionFilter.from_mapping(dict(request.query))
        return _json(await run(queries.list_sessions, flt))

    async def session(request: web.Request) -> web.Response:
        found = await run(reading.show, request.match_info["session_id"],
                          search_routes.reader_of(request, verifier))
        if found is None:
            return _json({"error": "no such session"}, 404)
        return _json(found)

    async def stats(request: web.Request) -> web.Response:
        params = dict(request.query)
        top = params.pop("top", "10")
        if not top.isdigit() or not 1 <= int(top) <= 1000:
            raise QueryError("top must be a whole number from 1 to 1000")
        exact = params.pop("exact", "0")
        if exact not in ("0", "1"):
            raise QueryError("exact must be 0 or 1")
        flt = SessionFilter.from_mapping(params)
        compute = queries.exact_stats if exact == "1" else queries.stats
        return _json(await run(compute, flt, int(top)))

    async def sql(request: web.Request) -> web.Response:
        verifier.check_scope(request.headers.get("Authorization"), SQL_SCOPE)
        statement = (await request.text()).strip()
        if not statement:
            raise QueryError("send the SQL statement as the request body")
        return _json(await asyncio.get_running_loop().run_in_executor(
            sql_pool, sql_gate.run, statement))

    app = web.Application(middlewares=[errors])
    app.router.add_get("/health", health)
    app.router.add_get("/api/sessions", sessions)
    app.router.add_get("/api/sessions/{session_id}", session)
    app.router.add_get("/api/stats", stats)
    app.router.add_post("/api/sql", sql)
    ui_routes.register(app, queries, run)
    recording_routes.register(app, RecordingQueries(store), run)
    reading = search_routes.register(app, queries, verifier, run, wal.dir / "access-log")
    live_routes.register(app, queries, run, hub)

    async def start_background(app: web.Application) -> None:
        app["background"] = [asyncio.create_task(hub.run_forever()),
                             asyncio.create_task(refresher.run_forever())]

    async def stop_background(app: web.Application) -> None:
        for task in app.get("background", []):
            task.cancel()
        await asyncio.gather(*app.get("background", []), return_exceptions=True)

    app.on_startup.append(start_background)
    app.on_shutdown.append(lambda _app: _async(hub.close_all))
    app.on_cleanup.append(stop_background)
    for executor in (pool, sql_pool):
        app.on_cleanup.append(lambda _app, e=executor: asyncio.get_running_loop().run_in_executor(
            None, e.shutdown))
    return app


async def _async(fn) -> None:
    fn()
