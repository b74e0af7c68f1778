"""Load: simulated interactive shells against a real sink with authentication on, a steady phase
and then a burst of ten times as many shells; every acknowledged span must be in the store and the
sink's memory must stay bounded.

Each simulated shell mints its own HS256 JWT and behaves like an instrumented shell: a start span at
once, then every 50-500 ms a command tick with 1-5 command spans, a heartbeat every few seconds,
and the root span when it exits (after 5-40 ticks); then a new session takes its place. A shell
sends one request at a time; spans that arrive while a request is in flight wait and go in the
next one (at most 512 per request), as an OTLP batch exporter does. 429/503 (gRPC UNAVAILABLE /
RESOURCE_EXHAUSTED) are retried after Retry-After (gRPC: backoff); a span counts as accepted only
when its request got 200 (gRPC OK).

    .venv/bin/python bench/bench_load.py [--shells 200] [--duration 60] [--burst-factor 10]
        [--burst-duration 15] [--max-wal-mib 4] [--grpc-share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import jwt
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from shellspan import semconv
from shellspan_testing.otlp_builders import kv, request_for
from shellspan_testing.sinkproc import SinkProcess

REPO = Path(__file__).resolve().parent.parent

SECRET = "bench-load-shared-secret-0123456789abcdef"
MAX_BATCH = 512  # spans per request at most, like an OTLP batch exporter
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE_GRPC = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
RSS_LIMIT_MIB = 1024
COMMANDS = ["ls -la", "git status", "kubectl get pods -n prod", "vim /etc/hosts", "cd /srv/app",
            "systemctl restart nginx", "tail -n 100 /var/log/syslog", "psql -c 'select 1'",
            "grep -r TODO src", "make test", "docker ps", "df -h"]


def token(sub: str, scope: str | None = None) -> str:
    claims = {"sub": sub, "aud": "shellspan", "exp": int(time.time()) + 3600}
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, SECRET, algorithm="HS256")


# --- measurements ---------------------------------------------------------------------------------


@dataclass
class PhaseStats:
    name: str
    started: float = 0.0
    ended: float = 0.0
    requests: int = 0  # attempts that got an answer or failed in transport
    ok: int = 0
    http_503: int = 0
    http_429: int = 0
    grpc_retryable: int = 0
    transport_errors: int = 0  # timeouts, resets: retried, the spans may or may not be stored
    other_errors: int = 0  # anything else (400, 401, ...): never expected
    spans_accepted: int = 0
    spans_rejected_retryable: int = 0
    spans_generated: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, per 200 answer
    delays: list[float] = field(default_factory=list)  # oldest span's age at its 200, seconds
    reasons: Counter = field(default_factory=Counter)  # why 503 / UNAVAILABLE
    loop_lag: list[float] = field(default_factory=list)  # the client's event-loop lag, seconds
    peak_rss: int = 0
    end_rss: int = 0
    peak_wal: int = 0
    sink_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def seconds(self) -> float:
        return max(1e-9, self.ended - self.started)

    @property
    def retryable(self) -> int:
        return self.http_503 + self.http_429 + self.grpc_retryable


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return pids


def rss_bytes(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def dir_bytes(path: Path) -> int:
    total = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    total += entry.stat().st_size
                except OSError:
                    pass
    except OSError:
        pass
    return total


class Sampler(threading.Thread):
    """The sink's resident memory (with any children) and WAL size, every 100 ms."""

    def __init__(self, pid: int, wal_dir: Path, interval: float = 0.1) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.wal_dir, self.interval = pid, wal_dir, interval
        self.phase: PhaseStats | None = None
        self.peak_rss = 0
        self.peak_wal = 0
        self.last_rss = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            rss, wal = rss_bytes(self.pid), dir_bytes(self.wal_dir)
            self.samples += 1
            self.last_rss = rss
            self.peak_rss, self.peak_wal = max(self.peak_rss, rss), max(self.peak_wal, wal)
            phase = self.phase
            if phase is not None:
                phase.peak_rss, phase.peak_wal = max(phase.peak_rss, rss), max(phase.peak_wal, wal)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


# --- the simulated shells -------------------------------------------------------------------------


class Load:
    def __init__(self, sink: SinkProcess, args: argparse.Namespace) -> None:
        self.sink, self.args = sink, args
        self.url = f"{sink.otlp_http_endpoint}/v1/traces"
        self.rng = random.Random(args.seed)
        self.phase: PhaseStats = PhaseStats("setup")
        self.accepted: list[tuple[bytes, bytes]] = []  # (trace id, span id) of every 200
        self.accepted_commands: dict[bytes, int] = {}
        self.give_up_at = float("inf")
        self.abandoned_spans = 0  # never acknowledged before the bounded final flush gave up
        self.sessions = 0
        self.http: aiohttp.ClientSession | None = None
        self.channels: list[grpc.aio.Channel] = []

    # One shell session: start span, command ticks, heartbeats, root span.
    async def session(self, n: int, until: float) -> None:
        rng = self.rng
        self.sessions += 1
        user, host = f"user{n % 97}", f"host{n % 23}"
        auth = f"Bearer {token(user)}"
        use_grpc = rng.random() < self.args.grpc_share
        trace_id, root_id = os.urandom(16), os.urandom(8)
        meta = [kv(semconv.SESSION_ID, trace_id.hex()), kv(semconv.SHELL_TYPE, "bash"),
                kv(semconv.USER_NAME, user), kv(semconv.HOST_NAME, host),
                kv(semconv.PROCESS_PID, 10_000 + n)]
        queue: list[tuple[Span, float]] = []
        wake = asyncio.Event()
        closed = False

        def emit(span: Span) -> None:
            queue.append((span, time.monotonic()))
            self.phase.spans_generated += 1
            wake.set()

        async def sender() -> None:
            while True:
                while not queue and not closed:
                    wake.clear()
                    await wake.wait()
                if not queue:
                    return
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                await self.deliver(batch, trace_id, auth, use_grpc)

        task = asyncio.create_task(sender())
        t0 = time.time_ns()
        emit(Span(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root_id,
                  name=semconv.SPAN_SESSION_START, start_time_unix_nano=t0,
                  end_time_unix_nano=t0 + 1000, attributes=meta))
        ticks, seq = rng.randint(5, 40), 0
        next_tick = time.monotonic()
        next_heartbeat = next_tick + self.args.heartbeat
        for _ in range(ticks):
            # A wall-clock schedule: a client that falls behind catches up, so the offered span
            # rate does not drop when this process is short of CPU.
            next_tick += rng.uniform(0.05, 0.5)
            delay = next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() >= until:
                break
            for _ in range(rng.randint(1, 5)):
                seq += 1
                line = rng.choice(COMMANDS)
                end = time.time_ns()
                exit_code = 1 if rng.random() < 0.1 else 0
                emit(Span(
                    trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root_id,
                    name=semconv.SPAN_COMMAND, start_time_unix_nano=end - 20_000_000,
                    end_time_unix_nano=end,
                    attributes=[kv(semconv.SESSION_ID, trace_id.hex()),
                                kv(semconv.COMMAND_LINE, line),
                                kv(semconv.COMMAND_NAME, line.split()[0]),
                                kv(semconv.COMMAND_SEQ, seq), kv(semconv.CWD, "/home/ops"),
                                kv(semconv.EXIT_CODE, exit_code)],
                    status=Status(code=Status.STATUS_CODE_ERROR if exit_code
                                  else Status.STATUS_CODE_UNSET)))
            if time.monotonic() >= next_heartbeat:
                next_heartbeat += self.args.heartbeat
                now = time.time_ns()
                emit(Span(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=root_id,
                          name=semconv.SPAN_HEARTBEAT, start_time_unix_nano=now,
                          end_time_unix_nano=now,
                          attributes=[kv(semconv.SESSION_ID, trace_id.hex()),
                                      kv(semconv.CWD, "/home/ops"), kv(semconv.COMMAND_COUNT, seq)]))
        end = time.time_ns()
        emit(Span(trace_id=trace_id, span_id=root_id, name=semconv.SPAN_SESSION,
                  start_time_unix_nano=t0, end_time_unix_nano=end,
                  attributes=meta + [kv(semconv.EXIT_REASON, "exit"), kv(semconv.EXIT_CODE, 0)]))
        closed = True
        wake.set()
        await task

    async def deliver(self, batch: list[tuple[Span, float]], trace_id: bytes, auth: str,
                      use_grpc: bool) -> None:
        """Send until acknowledged; retry retryable answers and transport errors."""
        spans = [span for span, _ in batch]
        oldest = min(t for _, t in batch)
        body = request_for(spans, service="bench-load").SerializeToString()
        attempt = 0
        while True:
            if time.monotonic() >= self.give_up_at:
                self.abandoned_spans += len(spans)
                return
            attempt += 1
            started = time.monotonic()
            wait, reason = None, ""
            try:
                if use_grpc:
                    channel = self.channels[hash(trace_id) % len(self.channels)]
                    call = channel.unary_unary(GRPC_METHOD)
                    await call(body, metadata=(("authorization", auth),), timeout=60)
                    status = 200
                else:
                    async with self.http.post(self.url, data=body, headers={
                            "Content-Type": "application/x-protobuf",
                            "Authorization": auth}) as resp:
                        answer = await resp.read()
                        status = resp.status
                        if status in (429, 503):
                            wait = float(resp.headers.get("Retry-After", "1"))
                            reason = status_message(answer)
            except grpc.aio.AioRpcError as exc:
                status = "grpc-retryable" if exc.code() in RETRYABLE_GRPC else f"grpc-{exc.code()}"
                reason = exc.details() or ""
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    status = "transport"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                status = "transport"
            phase = self.phase  # the answer counts in the phase it arrived in
            phase.requests += 1
            if status == 200:
                phase.ok += 1
                now = time.monotonic()
                phase.latencies.append(now - started)
                phase.delays.append(now - oldest)
                phase.spans_accepted += len(spans)
                self.accepted.extend((s.trace_id, s.span_id) for s in spans)
                commands = sum(1 for s in spans if s.name == semconv.SPAN_COMMAND)
                self.accepted_commands[trace_id] = self.accepted_commands.get(trace_id, 0) + commands
                return
            if status in (429, 503, "grpc-retryable"):
                if status == 503:
                    phase.http_503 += 1
                elif status == 429:
                    phase.http_429 += 1
                else:
                    phase.grpc_retryable += 1
                phase.spans_rejected_retryable += len(spans)
                phase.reasons[short_reason(reason)] += 1
            elif status == "transport":
                phase.transport_errors += 1
            else:
                phase.other_errors += 1
                print(f"  unexpected answer {status}; retrying", file=sys.stderr)
            if wait is None:  # gRPC carries no Retry-After: exponential backoff from 1 s
                wait = min(1.0 * 2 ** (attempt - 1), 8.0)
            await asyncio.sleep(wait * self.rng.uniform(1.0, 1.5))

    async def slot(self, n: int, start_delay: float, until: float) -> None:
        """One terminal: sessions one after another until `until`."""
        await asyncio.sleep(start_delay)
        k = 0
        while time.monotonic() < until:
            await self.session(n * 100_000 + k, until)
            k += 1

    async def run(self, phases: list[PhaseStats], sampler: Sampler) -> None:
        args = self.args
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=60)
        host = self.sink.otlp_grpc_endpoint.removeprefix("http://")
        self.channels = [grpc.aio.insecure_channel(host) for _ in range(4)]
        steady, burst, flush = phases
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as self.http:
            t0 = time.monotonic()
            steady_end = t0 + args.duration
            burst_end = steady_end + args.burst_duration
            self.give_up_at = burst_end + args.flush_timeout
            burst_shells = args.shells * args.burst_factor

            def begin(phase: PhaseStats) -> None:
                now = time.monotonic()
                if self.phase.started:
                    self.end(self.phase, now)
                phase.started = now
                phase.sink_cpu, phase.client_cpu = cpu_seconds(self.sink.proc.pid), client_cpu()
                self.phase = phase
                sampler.phase = phase

            begin(steady)
            watching = asyncio.Event()
            watcher = asyncio.create_task(self.watch_loop(watching))
            tasks = [asyncio.create_task(self.slot(i, self.rng.uniform(0, 1), burst_end))
                     for i in range(args.shells)]
            await asyncio.sleep(max(0.0, steady_end - time.monotonic()))
            begin(burst)
            tasks += [asyncio.create_task(self.slot(i, self.rng.uniform(0, 1), burst_end))
                      for i in range(args.shells, burst_shells)]
            await asyncio.sleep(max(0.0, burst_end - time.monotonic()))
            begin(flush)  # no new commands: every shell sends its root span and what it holds
            await asyncio.gather(*tasks)
            self.end(flush, time.monotonic())
            watching.set()
            await watcher
            sampler.phase = None
        for channel in self.channels:
            await channel.close()

    async def watch_loop(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """How late this process's event loop wakes up: is the client keeping its schedule?"""
        while not stop.is_set():
            started = time.monotonic()
            await asyncio.sleep(interval)
            self.phase.loop_lag.append(time.monotonic() - started - interval)

    def end(self, phase: PhaseStats, now: float) -> None:
        phase.ended = now
        phase.end_rss = rss_bytes(self.sink.proc.pid)
        phase.sink_cpu = cpu_seconds(self.sink.proc.pid) - phase.sink_cpu
        phase.client_cpu = client_cpu() - phase.client_cpu


def status_message(body: bytes) -> str:
    from google.rpc import status_pb2

    try:
        return status_pb2.Status.FromString(body).message
    except Exception:  # noqa: BLE001 - a reason is only for the report
        return body[:80].decode(errors="replace")


def short_reason(message: str) -> str:
    message = message.split("(")[0].split(":")[0].strip()
    return message[:48] or "(no message)"


def client_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- verification -----------------------------------------------------------------------------------


def verify(sink: SinkProcess, load: Load, chunk: int = 4000) -> dict:
    """Compare the accepted (trace id, span id) pairs with the store, range by range of span id."""
    totals = sink.sql("SELECT count(), uniqExact(TraceId, SpanId) FROM shellspan.otel_traces FINAL")
    stored_rows, stored_unique = totals["rows"][0]
    raw_rows = sink.sql("SELECT count() FROM shellspan.otel_traces")["rows"][0][0]
    accepted = {(t.hex(), s.hex()) for t, s in load.accepted}
    ids = sorted(s for _, s in accepted)
    bounds = [ids[i] for i in range(0, len(ids), chunk)][1:]
    edges = ["", *bounds]
    found: set[tuple[str, str]] = set()
    truncated = False
    for i, lo in enumerate(edges):
        cond = f"SpanId >= '{lo}'" + (f" AND SpanId < '{edges[i + 1]}'" if i + 1 < len(edges) else "")
        rows = sink.sql(f"SELECT TraceId, SpanId FROM shellspan.otel_traces FINAL WHERE {cond}")["rows"]
        truncated |= len(rows) >= 10_000  # the API caps a result at 10,000 rows
        found.update((t, s) for t, s in rows)
    sessions = sink.sql(
        "SELECT count(), sum(c) FROM (SELECT session_id, uniqExactMerge(command_ids) AS c "
        "FROM shellspan.shell_sessions GROUP BY session_id)")["rows"][0]
    return {
        "accepted": len(load.accepted), "accepted_unique": len(accepted),
        "stored_rows_final": stored_rows, "stored_unique": stored_unique, "raw_rows": raw_rows,
        "missing": len(accepted - found), "extra": len(found - accepted), "truncated": truncated,
        "sessions_stored": sessions[0], "commands_stored": sessions[1],
        "sessions_accepted": len(load.accepted_commands),
        "commands_accepted": sum(load.accepted_commands.values()),
    }


# --- main ---------------------------------------------------------------------------------------------


def command_line() -> str:
    python = Path(sys.executable)
    try:
        python = python.relative_to(Path.cwd())
    except ValueError:
        pass
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--shells", type=int, default=200, help="concurrent shells, steady phase")
    parser.add_argument("--duration", type=float, default=60.0, help="steady phase, seconds")
    parser.add_argument("--burst-factor", type=int, default=10,
                        help="the burst runs this many times as many shells")
    parser.add_argument("--burst-duration", type=float, default=15.0)
    parser.add_argument("--heartbeat", type=float, default=5.0, help="seconds between heartbeats")
    parser.add_argument("--grpc-share", type=float, default=0.1,
                        help="share of sessions sending OTLP/gRPC instead of OTLP/HTTP")
    parser.add_argument("--max-wal-mib", "--max-spool-mib", type=float, default=4.0,
                        help="the sink's --max-wal-bytes, in MiB (small, so the 503 path runs)")
    parser.add_argument("--flush-timeout", type=float, default=60.0,
                        help="after the burst, how long shells may keep retrying what they hold")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    print(f"$ {command_line()}")
    max_wal = int(args.max_wal_mib * (1 << 20))
    print(f"sink: auth required (HS256, a token per shell), --max-wal-bytes {max_wal} "
          f"({args.max_wal_mib:g} MiB, lowered from the 1 GiB default so the WAL fills and the "
          f"503 path runs); cores={os.cpu_count()}; client and sink share the machine")
    print(f"shells: {args.shells} for {args.duration:g} s, then {args.shells * args.burst_factor} "
          f"for {args.burst_duration:g} s; ticks every 50-500 ms with 1-5 command spans, heartbeat "
          f"every {args.heartbeat:g} s, 5-40 ticks a session; {args.grpc_share:.0%} of sessions on "
          f"OTLP/gRPC, the rest OTLP/HTTP protobuf", flush=True)

    phases = [PhaseStats("steady"), PhaseStats("burst"), PhaseStats("wind-down")]
    env = {"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "required"}
    with tempfile.TemporaryDirectory(prefix="shellspan-load-") as tmp:
        sink = SinkProcess(Path(tmp) / "sink", env=env,
                           extra_args=["--max-wal-bytes", str(max_wal)]).start()
        sink.read_token = token("bench-reader", scope="sessions:read sessions:sql")
        sampler = Sampler(sink.proc.pid, Path(tmp) / "sink" / "store-wal")
        sampler.start()
        load = Load(sink, args)
        try:
            rss_start = rss_bytes(sink.proc.pid)
            asyncio.run(load.run(phases, sampler))
            drain_started = time.monotonic()
            sink.wait_for(lambda: sink.get("/health")["wal"]["pending_bytes"] == 0,
                          timeout=args.drain_timeout)
            drain = time.monotonic() - drain_started
            sampler.stop()
            health = sink.get("/health")
            result = verify(sink, load)
            rss_end = rss_bytes(sink.proc.pid)
        except Exception:
            print(sink.log()[-4000:], file=sys.stderr)
            raise
        finally:
            sampler.stop()
            sink.stop()

    mib = 1 << 20
    print()
    shells = {"steady": args.shells, "burst": args.shells * args.burst_factor, "wind-down": 0}
    print(f"{'phase':10} {'secs':>5} {'shells':>6} {'req/s':>6} {'spans/s':>7} {'offered/s':>9} "
          f"{'accepted':>8} {'rej-retry':>9} {'503':>5} {'429':>4} {'grpcU':>5} {'xport':>5}")
    for p in phases:
        print(f"{p.name:10} {p.seconds:5.1f} {shells[p.name]:6} {p.ok / p.seconds:6.0f} "
              f"{p.spans_accepted / p.seconds:7.0f} {p.spans_generated / p.seconds:9.0f} "
              f"{p.spans_accepted:8} {p.spans_rejected_retryable:9} {p.http_503:5} {p.http_429:4} "
              f"{p.grpc_retryable:5} {p.transport_errors:5}")
    print(f"{'phase':10} {'ack p50':>8} {'p99':>7} {'max':>7} {'age p99':>8} {'max':>7} "
          f"{'RSS MiB':>7} {'at end':>6} {'WAL MiB':>9} {'sink CPU':>8} {'client CPU':>10} {'loop lag p99':>12}")
    for p in phases:
        print(f"{p.name:10} {pct(p.latencies, 0.5):7.3f}s {pct(p.latencies, 0.99):6.2f}s "
              f"{max(p.latencies, default=0):6.2f}s {pct(p.delays, 0.99):7.2f}s "
              f"{max(p.delays, default=0):6.2f}s {p.peak_rss / mib:7.0f} {p.end_rss / mib:6.0f} {p.peak_wal / mib:9.1f} "
              f"{p.sink_cpu / p.seconds:8.0%} {p.client_cpu / p.seconds:10.0%} "
              f"{pct(p.loop_lag, 0.99):11.3f}s")
    print("  req/s: requests answered 200 (gRPC OK) per second; spans/s: spans accepted per second;\n"
          "  offered/s: spans the shells produced per second; rej-retry: spans in requests answered\n"
          "  503/429/UNAVAILABLE (each retried after Retry-After, gRPC: backoff); xport: transport\n"
          "  errors, retried; ack: one request's round trip to a 200; age: a request's oldest span,\n"
          "  from its creation to its 200 (includes waiting behind earlier requests and retries);\n"
          "  RSS and WAL: peaks; CPU: share of one core; loop lag: the load generator's lateness")
    for p in phases:
        if p.reasons:
            print(f"  {p.name} retryable answers by message: "
                  + ", ".join(f"{n} x {r!r}" for r, n in p.reasons.most_common()))
    steady, burst = phases[0], phases[1]
    offered = (burst.spans_generated / burst.seconds) / max(1e-9, steady.spans_generated / steady.seconds)
    achieved = (burst.ok / burst.seconds) / max(1e-9, steady.ok / steady.seconds)
    accepted = sum(p.spans_accepted for p in phases)
    rejected = sum(p.spans_rejected_retryable for p in phases)
    lost = result["missing"]
    other = sum(p.other_errors for p in phases)
    print(f"burst vs steady: spans offered x{offered:.1f}, requests answered 200 x{achieved:.1f}")
    print(f"sessions: {load.sessions} started; {result['sessions_accepted']} with an accepted span, "
          f"{result['sessions_stored']} in shell_sessions; command spans accepted "
          f"{result['commands_accepted']}, counted in shell_sessions {result['commands_stored']}")
    print(f"spans accepted (HTTP 200 / gRPC OK): {accepted}")
    print(f"spans rejected with a retryable status (then retried): {rejected} in "
          f"{sum(p.retryable for p in phases)} answers (503: {sum(p.http_503 for p in phases)}, "
          f"429: {sum(p.http_429 for p in phases)}, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED: "
          f"{sum(p.grpc_retryable for p in phases)})")
    print(f"spans never acknowledged (gave up after the bounded flush): {load.abandoned_spans}; "
          f"unexpected answers: {other}")
    print(f"store: otel_traces FINAL count() {result['stored_rows_final']}, uniqExact(TraceId, "
          f"SpanId) {result['stored_unique']}, rows before dedup {result['raw_rows']}; the sink "
          f"counted {health['received_spans']} received, {health['wal']['inserted_spans']} inserted")
    print(f"spans lost (accepted but not stored): {lost}; stored but never acknowledged: "
          f"{result['extra']}" + ("  (WARNING: a check result hit the 10,000-row cap)"
                                  if result["truncated"] else ""))
    print(f"sink RSS: {rss_start / mib:.0f} MiB at start, peak {sampler.peak_rss / mib:.0f} MiB "
          f"({sampler.samples} samples every 100 ms), {rss_end / mib:.0f} MiB after the drain; "
          f"WAL peak {sampler.peak_wal / mib:.1f} MiB")
    print(f"drain (WAL empty after the last send): {drain:.1f} s")
    checks = {
        "lost == 0": lost == 0 and result["accepted_unique"] == accepted,
        "stored count == accepted": result["stored_rows_final"] == accepted == result["stored_unique"],
        f"peak RSS < {RSS_LIMIT_MIB} MiB": sampler.peak_rss < RSS_LIMIT_MIB * mib,
        "no unexpected answers": other == 0 and load.abandoned_spans == 0,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    passed = all(checks.values())
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
