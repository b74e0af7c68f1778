"""`shellspan-sink serve`: the store, the write path and the three listeners in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .grpc_receiver import start_grpc
from .http_apps import api_app, otlp_app
from .ingest import Ingest, IngestLimits
from .queries import SessionQueries
from .schema import SchemaOptions
from .store import Store, redact_dsn, state_dir
from .wal import WriteAheadLog

log = logging.getLogger("shellspan_sink")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port)


@dataclass
class SinkConfig:
    store: str
    schema: SchemaOptions = field(default_factory=SchemaOptions)
    otlp_http: str = "127.0.0.1:4318"
    otlp_grpc: str = "127.0.0.1:4317"
    api: str = "127.0.0.1:8678"
    abandon_after: float = 300.0
    ack_timeout: float = 30.0
    limits: IngestLimits = field(default_factory=IngestLimits)
    wal_dir: Path | None = None  # default: beside an embedded store, else the state dir
    segment_spans: int = 100_000
    segment_age: float = 0.5
    max_spool_bytes: int = 1 << 30

    @property
    def spool_dir(self) -> Path:
        if self.wal_dir is not None:
            return Path(self.wal_dir)
        if self.store.startswith("chdb://"):
            return Path(self.store[len("chdb://"):].rstrip("/") + "-wal")
        return state_dir() / "sink-wal"


def banner(cfg: SinkConfig) -> str:
    http_host, http_port = split_address(cfg.otlp_http)
    api_host, api_port = split_address(cfg.api)
    return f"""shellspan sink is running
  store      {redact_dsn(cfg.store)}
  spool      {cfg.spool_dir}
  OTLP/HTTP  http://{cfg.otlp_http}/v1/traces
  OTLP/gRPC  {cfg.otlp_grpc}
  API        http://{cfg.api}/api/sessions   (health: http://{cfg.api}/health)

Send a shell's sessions here from any OpenTelemetry SDK or collector:
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{http_host}:{http_port}
  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
then, in that environment, instrument a shell (see README.md, "Instrument a shell").
List sessions:  shellspan-sink sessions list --api http://{api_host}:{api_port}
Stop with Ctrl-C."""


async def serve_async(cfg: SinkConfig, ready: asyncio.Event | None = None) -> None:
    store = Store(cfg.store, cfg.schema)
    applied = await asyncio.to_thread(store.migrate)
    if applied:
        log.info("applied schema migrations %s", applied)
    spool = WriteAheadLog(cfg.spool_dir, store, segment_spans=cfg.segment_spans,
                          segment_age=cfg.segment_age, max_bytes=cfg.max_spool_bytes).start()
    ingest = Ingest(spool, cfg.limits)
    queries = SessionQueries(store, cfg.abandon_after)

    runners: list[web.AppRunner] = []
    # OTLP bodies are inflated by the sink itself, with a bound (aiohttp's own has none).
    for app, address, inflate in ((otlp_app(ingest, ack_timeout=cfg.ack_timeout), cfg.otlp_http, False),
                                  (api_app(store, queries, spool, ingest), cfg.api, True)):
        runner = web.AppRunner(app, access_log=None, auto_decompress=inflate)
        await runner.setup()
        host, port = split_address(address)
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    grpc_server = start_grpc(ingest, cfg.otlp_grpc, max_message_bytes=cfg.limits.max_body_bytes,
                             ack_timeout=cfg.ack_timeout)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(banner(cfg), flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()

    log.info("shutting down: finishing queued writes")
    grpc_server.stop(grace=5).wait(10)
    for runner in runners:
        await runner.cleanup()
    await asyncio.to_thread(spool.stop)
    store.close()


def serve(cfg: SinkConfig) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_async(cfg))
    except OSError as exc:
        print(f"shellspan-sink: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
