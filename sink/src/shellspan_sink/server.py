"""`shellspan-sink serve`: the store, the write path and the three listeners in one process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from . import memory
from .auth import Verifier
from .config import SinkConfig, split_address
from .grpc_receiver import start_grpc
from .http_apps import api_app, otlp_app
from .inflight import InflightBytes
from .ingest import Ingest
from .live import LiveLimits
from .owners import SessionOwners
from .queries import SessionQueries
from .signals import LOGS
from .sqlgate import SqlGate
from .store import Store, StoreError, private_dir, redact_dsn
from .wal import WriteAheadLog

log = logging.getLogger("shellspan_sink")


def banner(cfg: SinkConfig, auth_mode: str) -> str:
    http_host, http_port = split_address(cfg.otlp_http)
    api = f"http://{cfg.api}"
    bindir = Path(sys.executable).parent
    shellspan = bindir / "shellspan"
    return f"""shellspan sink is running
  store      {redact_dsn(cfg.store_dsn)}
  WAL        {cfg.wal_path}
  OTLP/HTTP  http://{cfg.otlp_http}/v1/traces  (recordings: /v1/logs)
  OTLP/gRPC  {cfg.otlp_grpc}
  API        {api}/api/sessions   (health: {api}/health)
  web UI     {api}/
  auth       {auth_mode}

Instrument a shell (in another terminal):
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{http_host}:{http_port}
  {shellspan} python                  # a recorded Python REPL
  eval "$({shellspan} init bash)"     # this bash session (zsh: init zsh)
  {shellspan} status                  # is it recorded, where do spans go
Any OpenTelemetry SDK or collector can send to the OTLP endpoints above.

List sessions:  {bindir / "shellspan-sink"} sessions list --api {api}
Stop with Ctrl-C."""


async def serve_async(cfg: SinkConfig, ready: asyncio.Event | None = None) -> None:
    verifier = Verifier(cfg.auth)  # configuration errors stop the sink before it listens
    memory.tune_allocator()
    store = Store(cfg.store_dsn, cfg.schema)
    applied = await asyncio.to_thread(store.migrate)
    if applied:
        log.info("applied schema migrations %s", applied)
    private_dir(cfg.wal_path)
    wal = WriteAheadLog(cfg.wal_path, store, segment_spans=cfg.wal_segment_spans,
                        segment_age=cfg.wal_segment_age, max_bytes=cfg.max_wal_bytes).start()
    private_dir(cfg.logs_wal_path)
    logs_wal = WriteAheadLog(cfg.logs_wal_path, store, table=LOGS.table, columns=LOGS.columns,
                             segment_spans=cfg.wal_segment_spans, segment_age=cfg.wal_segment_age,
                             max_bytes=cfg.max_wal_bytes).start()
    # With auth off nothing is verified, so no session has an owner to protect. Spans and a
    # session's recording (log records) answer to the same owners.
    owners = SessionOwners(store) if verifier.enabled else None
    ingest = Ingest(wal, cfg.limits, cfg.encoder, owners=owners)
    logs = Ingest(logs_wal, cfg.limits, signal=LOGS, owners=owners)
    # One bound over both signals and both transports.
    inflight = InflightBytes(cfg.max_inflight_bytes)
    queries = SessionQueries(store, cfg.abandon_after)
    sql_gate = SqlGate(cfg.sql_store or cfg.store_dsn, cfg.schema, cfg.sql_limits)

    runners: list[web.AppRunner] = []
    otlp = otlp_app((ingest, logs), verifier, inflight, ack_timeout=cfg.ack_timeout,
                    body_timeout=cfg.body_timeout)
    live = LiveLimits(max_streams=cfg.max_streams, heartbeat_s=cfg.stream_heartbeat,
                      poll_s=cfg.live_poll)
    api = api_app(store, queries, wal, ingest, verifier, logs, sql_gate, inflight, live,
                  cfg.rollup_interval)
    # OTLP bodies are inflated by the sink itself, with a bound (aiohttp's own has none).
    for app, address, inflate in ((otlp, cfg.otlp_http, False), (api, cfg.api, True)):
        runner = web.AppRunner(app, access_log=None, auto_decompress=inflate)
        await runner.setup()
        host, port = split_address(address)
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    grpc_server = start_grpc((ingest, logs), verifier, inflight, cfg.otlp_grpc,
                             max_message_bytes=cfg.limits.max_body_bytes, ack_timeout=cfg.ack_timeout)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(banner(cfg, verifier.mode), flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()

    log.info("shutting down: finishing queued writes")
    grpc_server.stop(grace=5).wait(10)
    for runner in runners:
        await runner.cleanup()
    await asyncio.gather(asyncio.to_thread(wal.stop), asyncio.to_thread(logs_wal.stop))
    sql_gate.close()
    store.close()


def serve(cfg: SinkConfig) -> int:
    # Whatever the sink and its embedded engine create (the store's parts, the WAL) is its own:
    # chDB would otherwise write 0644 files in 0755 directories.
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_async(cfg))
    except (OSError, ValueError, StoreError) as exc:
        print(f"shellspan-sink: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
