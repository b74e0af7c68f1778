"""`shellspan-sink serve`: the store, the write path and the three listeners in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .auth import AuthConfig, Verifier
from .grpc_receiver import start_grpc
from .http_apps import api_app, otlp_app
from .ingest import Ingest, IngestLimits
from .queries import SessionQueries
from .schema import SchemaOptions
from .store import Store, StoreError, redact_dsn, state_dir
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
    auth: AuthConfig = field(default_factory=AuthConfig.from_env)
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


def banner(cfg: SinkConfig, auth_mode: str) -> str:
    http_host, http_port = split_address(cfg.otlp_http)
    api = f"http://{cfg.api}"
    bindir = Path(sys.executable).parent
    shellspan = bindir / "shellspan"
    return f"""shellspan sink is running
  store      {redact_dsn(cfg.store)}
  spool      {cfg.spool_dir}
  OTLP/HTTP  http://{cfg.otlp_http}/v1/traces
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
    for app, address, inflate in ((otlp_app(ingest, verifier, ack_timeout=cfg.ack_timeout), cfg.otlp_http, False),
                                  (api_app(store, queries, spool, ingest, verifier), cfg.api, True)):
        runner = web.AppRunner(app, access_log=None, auto_decompress=inflate)
        await runner.setup()
        host, port = split_address(address)
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    grpc_server = start_grpc(ingest, verifier, cfg.otlp_grpc, max_message_bytes=cfg.limits.max_body_bytes,
                             ack_timeout=cfg.ack_timeout)

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
    await asyncio.to_thread(spool.stop)
    store.close()


def serve(cfg: SinkConfig) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_async(cfg))
    except (OSError, ValueError, StoreError) as exc:
        print(f"shellspan-sink: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
