"""End to end through the collectors with real processes only: a `shellspan python` REPL in a pty
-> agent collector (agent.yaml) -> gateway collector (gateway.yaml) -> `shellspan-sink` with
`SHELLSPAN_AUTH_MODE=required`, and the gateway's fan-out to a trace backend.

The collector is the one collector_config/build.sh builds (or has cached); without a Go toolchain
the module is skipped with the reason printed. The trace backend is Jaeger v2 (all-in-one with
in-memory storage), built once from its Go module and cached under
${XDG_CACHE_HOME:-~/.cache}/shellspan/jaeger/<release>/; where that build is not possible (or
`SHELLSPAN_E2E_TRACE_BACKEND=collector` is set) a second collector stands in for it, forwarding
to a small recording OTLP/HTTP receiver in this process. docs/collector.md says why and how.
Everything listens on free loopback ports; every process started here is stopped at the end.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest

from shellspan import semconv
from shellspan.auth import login_name
from shellspan_testing.background import Process, go_command, port_open, run_bounded, wait_for
from shellspan_testing.python_shell_helpers import run_session, shell_env, tagged
from shellspan_testing.sinkproc import SinkProcess, drained, free_port

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive shells in a pty")

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector_config"
BUILD_SCRIPT = CONFIG_DIR / "build.sh"
SECRET = "e2e-secret-" + uuid.uuid4().hex
EXIT_LIMIT_S = 1.0  # Ctrl-D to process exit; the shell's own flush budget is far smaller

# The session every shell here runs: a few commands, one of them failing.
COMMANDS = ["x = 6 * 7", "print('answer', x)", "1/0", "y = x + 1"]
EXIT_CODES = [0, 0, 1, 0]

# Jaeger v2 is released from the same repository as v1: the Go module carries the v1 tag of a
# release pair, so Jaeger v2.13.0 is github.com/jaegertracing/jaeger@v1.76.0 (its CHANGELOG says
# "v1.76.0 / v2.13.0"), and cmd/jaeger is the v2 binary.
JAEGER_RELEASE = "v2.13.0"
JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_MODULE_VERSION = "v1.76.0"
JAEGER_BUILD_TIMEOUT_S = 900

# The first collector build (build.sh) or Jaeger build happens in a module fixture and counts
# against the first test that uses it.
pytestmark = pytest.mark.timeout(1800)


# --------------------------------------------------------------------------------------------------
# small helpers


@pytest.fixture(scope="module")
def processes():
    """Start processes through this; every one is stopped when the module ends (in reverse)."""
    started: list[Process] = []

    def make(*args, **kwargs) -> Process:
        p = Process(*args, **kwargs)
        started.append(p)
        return p

    yield make
    for p in reversed(started):
        p.stop()


# --------------------------------------------------------------------------------------------------
# the collector binary and the collector configs


@pytest.fixture(scope="module")
def otelcol() -> Path:
    proc = run_bounded(["bash", str(BUILD_SCRIPT)], timeout=1200)
    if proc.returncode == 3:
        reason = f"collector not built, no Go toolchain: {proc.stderr.strip()}"
        print(reason)
        pytest.skip(reason)
    assert proc.returncode == 0, f"build.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    binary = Path(proc.stdout.strip().splitlines()[-1])
    assert binary.is_file() and os.access(binary, os.X_OK), binary
    return binary


class Gateway:
    def __init__(self, processes, otelcol: Path, tmp: Path, sink_endpoint: str,
                 backend_port: int) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {
            "SHELLSPAN_GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "SHELLSPAN_GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "SHELLSPAN_GATEWAY_QUEUE_DIR": str(tmp / "gateway-queue"),
            "SHELLSPAN_GATEWAY_METRICS_PORT": str(free_port()),
            "SHELLSPAN_GATEWAY_RETRY_MAX_INTERVAL": "2s",
            "SHELLSPAN_SINK_ENDPOINT": sink_endpoint,
            "SHELLSPAN_TRACE_BACKEND_ENDPOINT": f"127.0.0.1:{backend_port}",
        }
        self.proc = processes([str(otelcol), f"--config={CONFIG_DIR / 'gateway.yaml'}"],
                              tmp / "gateway.log", [self.grpc_port, self.http_port], env)


class Agent:
    def __init__(self, processes, otelcol: Path, tmp: Path, gateway_grpc_port: int) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {
            "SHELLSPAN_AGENT_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "SHELLSPAN_AGENT_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "SHELLSPAN_AGENT_QUEUE_DIR": str(tmp / "agent-queue"),
            "SHELLSPAN_AGENT_METRICS_PORT": str(free_port()),
            "SHELLSPAN_AGENT_RETRY_MAX_INTERVAL": "2s",
            "SHELLSPAN_GATEWAY_ENDPOINT": f"127.0.0.1:{gateway_grpc_port}",
        }
        self.proc = processes([str(otelcol), f"--config={CONFIG_DIR / 'agent.yaml'}"],
                              tmp / "agent.log", [self.grpc_port, self.http_port], env)
        self.endpoint = f"http://127.0.0.1:{self.http_port}"


# --------------------------------------------------------------------------------------------------
# the trace backend: Jaeger v2, or a collector standing in for it


def jaeger_cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "shellspan" / "jaeger" / JAEGER_RELEASE


def jaeger_binary() -> tuple[Path | None, str]:
    """(the cached or freshly built Jaeger binary, how it was obtained) or (None, why not).

    `go install github.com/jaegertracing/jaeger/cmd/jaeger@...` refuses the module, because its
    go.mod has a replace directive; so the module's source is fetched from the module proxy
    (`go mod download`) and built with `go build` inside it, where the replace applies. A failed
    build leaves a `build-failed` note in the cache directory, so later runs do not retry it;
    delete the note to try again."""
    cache = jaeger_cache_dir()
    binary, failed = cache / "jaeger", cache / "build-failed"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, f"cached at {binary}"
    if failed.exists():
        return None, f"an earlier build failed ({failed}): {failed.read_text()[-800:]}"
    go = go_command()
    if go is None:
        return None, "no Go toolchain to build Jaeger with"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time for parallel runs
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary, f"built meanwhile, cached at {binary}"
        started = time.monotonic()
        try:
            dl = run_bounded([go, "mod", "download", "-json",
                              f"{JAEGER_MODULE}@{JAEGER_MODULE_VERSION}"], timeout=300)
            if dl.returncode != 0:
                raise RuntimeError(f"go mod download failed:\n{dl.stdout[-1500:]}{dl.stderr[-1500:]}")
            source = json.loads(dl.stdout)["Dir"]
            tmp_binary = cache / f".jaeger.{os.getpid()}.tmp"
            ldflags = f"-X {JAEGER_MODULE}/internal/version.latestVersion={JAEGER_RELEASE}"
            build = run_bounded([go, "build", "-trimpath", "-ldflags", ldflags, "-o",
                                 str(tmp_binary), "./cmd/jaeger"], timeout=JAEGER_BUILD_TIMEOUT_S,
                                cwd=source, env={**os.environ, "GOFLAGS": "-mod=readonly"})
            if build.returncode != 0:
                raise RuntimeError(f"go build failed:\n{build.stderr[-3000:]}")
            os.replace(tmp_binary, binary)
        except subprocess.TimeoutExpired:
            failed.write_text(f"the build took longer than {JAEGER_BUILD_TIMEOUT_S}s\n")
            return None, failed.read_text()
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            failed.write_text(f"{exc}\n")
            return None, f"build failed: {exc}"
        took = time.monotonic() - started
        (cache / "build-seconds").write_text(f"{took:.0f}\n")
        return binary, f"built in {took:.0f}s, cached at {binary}"


JAEGER_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    # On by default: Jaeger would trace itself to OTLP/gRPC localhost:4317 (the sink's and the
    # agent's default port) and wait for that export at shutdown.
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:{query_http}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class JaegerBackend:
    """Jaeger v2 all-in-one, in-memory storage; spans are read back through its query API."""

    def __init__(self, processes, binary: Path, tmp: Path, how: str) -> None:
        self.otlp_grpc_port, query_http, query_grpc = free_port(), free_port(), free_port()
        config = tmp / "jaeger.yaml"
        config.write_text(JAEGER_CONFIG.format(otlp_grpc=self.otlp_grpc_port,
                                               query_http=query_http, query_grpc=query_grpc))
        self.query_url = f"http://127.0.0.1:{query_http}"
        self.proc = processes([str(binary), "--config", str(config)], tmp / "jaeger.log",
                              [self.otlp_grpc_port, query_http]).start(timeout=60)
        self.description = f"Jaeger {JAEGER_RELEASE} ({how})"

    def trace_spans(self, trace_id: str) -> dict[str, str]:
        """{span id: span name} of one trace, as Jaeger's query API returns it ({} if unknown)."""
        try:
            with urllib.request.urlopen(f"{self.query_url}/api/traces/{trace_id}",
                                        timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {}
            raise
        spans = {}
        for trace in body.get("data") or []:
            assert trace["traceID"] == trace_id, trace["traceID"]
            for span in trace["spans"]:
                spans[span["spanID"]] = span["operationName"]
        return spans

    def log(self) -> str:
        return self.proc.log()


class RecordingReceiver:
    """OTLP/HTTP traces receiver that records every span it gets (and the request's
    Authorization header)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[tuple[str, str], str] = {}
        self.authorization: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                with outer.lock:
                    outer.authorization.append(self.headers.get("Authorization"))
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                key = (span.trace_id.hex(), span.span_id.hex())
                                outer.spans[key] = span.name
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


STANDIN_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
processors:
  batch:
    timeout: 200ms
exporters:
  otlp_http/recorder:
    endpoint: http://127.0.0.1:{recorder}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http/recorder]
  telemetry:
    metrics:
      level: none
"""


class CollectorBackend:
    """A second collector (the built binary: OTLP/gRPC in, OTLP/HTTP out) in front of a recording
    receiver, standing in for a trace backend."""

    def __init__(self, processes, otelcol: Path, tmp: Path, why: str) -> None:
        self.recorder = RecordingReceiver()
        self.otlp_grpc_port = free_port()
        config = tmp / "backend-standin.yaml"
        config.write_text(STANDIN_CONFIG.format(otlp_grpc=self.otlp_grpc_port,
                                                recorder=self.recorder.port))
        self.proc = processes([str(otelcol), f"--config={config}"], tmp / "backend.log",
                              [self.otlp_grpc_port]).start()
        self.description = f"collector stand-in ({why})"

    def trace_spans(self, trace_id: str) -> dict[str, str]:
        with self.recorder.lock:
            return {sid: name for (tid, sid), name in self.recorder.spans.items()
                    if tid == trace_id}

    def log(self) -> str:
        return self.proc.log()


@pytest.fixture(scope="module")
def trace_backend(otelcol, processes, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backend")
    choice = os.environ.get("SHELLSPAN_E2E_TRACE_BACKEND", "auto")
    assert choice in ("auto", "jaeger", "collector"), choice
    backend = None
    if choice == "collector":
        backend = CollectorBackend(processes, otelcol, tmp, "SHELLSPAN_E2E_TRACE_BACKEND")
    else:
        binary, how = jaeger_binary()
        if binary is not None:
            backend = JaegerBackend(processes, binary, tmp, how)
        else:
            assert choice != "jaeger", f"Jaeger required but unavailable: {how}"
            backend = CollectorBackend(processes, otelcol, tmp, f"no Jaeger: {how}")
    print(f"trace backend: {backend.description}")
    yield backend
    if isinstance(backend, CollectorBackend):
        backend.proc.stop()
        backend.recorder.close()


# --------------------------------------------------------------------------------------------------
# the sink, the pipeline, the shells


def secret_file(directory: Path, secret: str = SECRET) -> str:
    """The shared secret in a 0600 file: the shell side reads it from nowhere else."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "shellspan-secret"
    path.write_text(secret)
    path.chmod(0o600)
    return str(path)


def read_token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": "e2e-reader", "aud": "shellspan", "iat": now, "exp": now + 3600,
                       "scope": "sessions:read sessions:sql"}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("sink"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "required"})
    proc.read_token = read_token()
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


class Pipeline:
    def __init__(self, sink: SinkProcess, gateway: Gateway, agent: Agent, backend) -> None:
        self.sink, self.gateway, self.agent, self.backend = sink, gateway, agent, backend

    def logs(self) -> str:
        return (f"--- agent\n{self.agent.proc.log()}\n--- gateway\n{self.gateway.proc.log()}\n"
                f"--- sink\n{self.sink.log()[-4000:]}\n--- backend\n{self.backend.log()}")


@pytest.fixture(scope="module")
def pipeline(otelcol, processes, sink, trace_backend, tmp_path_factory):
    """agent -> gateway -> sink (+ trace backend), all up."""
    tmp = tmp_path_factory.mktemp("pipeline")
    gateway = Gateway(processes, otelcol, tmp, sink.otlp_http_endpoint,
                      trace_backend.otlp_grpc_port)
    gateway.proc.start()
    agent = Agent(processes, otelcol, tmp, gateway.grpc_port)
    agent.proc.start()
    yield Pipeline(sink, gateway, agent, trace_backend)
    agent.proc.stop()
    gateway.proc.stop()


class ShellRun:
    def __init__(self, env: dict[str, str], output: str, exit_s: float, status: int | None):
        self.env, self.output, self.exit_s, self.status = env, output, exit_s, status
        self.tag = env["OTEL_SERVICE_NAME"]  # tells this run's sessions apart

    def spooled(self) -> list[str]:
        d = Path(self.env["SHELLSPAN_SPOOL_DIR"])
        return sorted(p.name for p in d.iterdir() if p.suffix == ".otlp") if d.exists() else []


def run_shell(env: dict[str, str]) -> ShellRun:
    """`shellspan python -q` in a pty: COMMANDS, then Ctrl-D."""
    exit_s, output, status = run_session(env, COMMANDS, cwd=env["HOME"])
    return ShellRun(env, output, exit_s, status)


def stored_session(sink: SinkProcess, tag: str, timeout: float, on_fail=None) -> dict:
    """The one ended session of the run tagged `tag`, once all its commands are stored; its
    detail."""
    def complete():
        found = tagged(sink, tag, state="ended")
        if not found:
            return None
        detail = sink.session(found[0]["session_id"])
        return detail if len(detail["commands"]) >= len(COMMANDS) else None

    try:
        return sink.wait_for(complete, timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{on_fail() if on_fail else ''}") from exc


def assert_recorded(detail: dict) -> None:
    """The session as the shell recorded it, verified as the user the shell ran as."""
    session = detail["session"]
    user = login_name()
    assert session["user_name"] == user, session
    assert (session["enduser_id"], session["verified"]) == (user, True), session
    assert session["shell_type"] == "python" and session["exit_reason"] == "eof", session
    assert session["command_count"] == len(COMMANDS), session
    assert session["failed_count"] == EXIT_CODES.count(1), session
    commands = detail["commands"]
    assert [c["command"] for c in commands] == COMMANDS
    assert [c["exit_code"] for c in commands] == EXIT_CODES
    assert [c["status"] for c in commands] == ["Error" if e else "Unset" for e in EXIT_CODES]


def raw_counts(sink: SinkProcess, trace_id: str) -> tuple[int, int]:
    """(rows, distinct (trace id, span id)) of one trace in the raw table, deduplicated (FINAL)."""
    assert all(c in "0123456789abcdef" for c in trace_id) and len(trace_id) == 32, trace_id
    rows = sink.sql("SELECT count(), uniqExact(TraceId, SpanId) FROM shellspan.otel_traces FINAL "
                    f"WHERE TraceId = '{trace_id}'")["rows"]
    return int(rows[0][0]), int(rows[0][1])


def raw_spans(sink: SinkProcess, trace_id: str) -> dict[str, str]:
    assert all(c in "0123456789abcdef" for c in trace_id) and len(trace_id) == 32, trace_id
    rows = sink.sql("SELECT SpanId, SpanName FROM shellspan.otel_traces FINAL "
                    f"WHERE TraceId = '{trace_id}'")["rows"]
    return {span_id: name for span_id, name in rows}


def raw_rows_for_shell(sink: SinkProcess, run: ShellRun) -> int:
    """Rows in the raw table from one shell run, found by its working directory (a directory of
    its own, which every session and command span carries), heartbeats aside (how many a
    session sends depends on how long it took)."""
    cwd = run.env["HOME"]
    assert all(c.isalnum() or c in "/_.-" for c in cwd), cwd
    rows = sink.sql("SELECT count() FROM shellspan.otel_traces WHERE "
                    f"SpanAttributes['shell.cwd'] = '{cwd}' "
                    f"AND SpanName != '{semconv.SPAN_HEARTBEAT}'")["rows"]
    return int(rows[0][0])


def wait_spool_empty(run: ShellRun, timeout: float = 20.0) -> None:
    """What the shell could not send within its exit budget is spooled and handed to a detached
    helper; once everything is accepted downstream, nothing is left to resend."""
    wait_for(lambda: not run.spooled(), timeout, "an empty spool",
             on_fail=lambda: f"left: {run.spooled()}")


@pytest.fixture(scope="module")
def good_run(pipeline, tmp_path_factory) -> ShellRun:
    """One session with a JWT minted by the shell from the shared secret, through the agent."""
    tmp = tmp_path_factory.mktemp("good-shell")
    run = run_shell(shell_env(tmp, pipeline.agent.endpoint,
                              SHELLSPAN_AUTH_SECRET_FILE=secret_file(tmp)))
    assert run.status == 0, run.output
    return run


# --------------------------------------------------------------------------------------------------
# 1. shell -> agent -> gateway -> sink, with the verified identity


def test_session_reaches_the_sink_with_the_verified_identity(pipeline, good_run):
    assert good_run.exit_s < EXIT_LIMIT_S, f"exit took {good_run.exit_s:.2f}s"
    assert "answer 42" in good_run.output and "ZeroDivisionError" in good_run.output
    assert good_run.output.count("Traceback") == 1, good_run.output  # the one from 1/0
    wait_spool_empty(good_run)  # the agent accepted everything

    detail = stored_session(pipeline.sink, good_run.tag, 60, pipeline.logs)
    assert_recorded(detail)
    # The verified subject is stamped on the session's spans, too.
    assert detail["session"]["attributes"]["enduser.id"] == login_name()
    session_id = detail["session"]["session_id"]
    rows, distinct = raw_counts(pipeline.sink, session_id)
    assert rows == distinct >= len(COMMANDS) + 2  # commands + start + root (+ heartbeats)


# --------------------------------------------------------------------------------------------------
# 2. invalid tokens: rejected at the sink, unnoticed by the shell


def test_invalid_tokens_are_rejected_at_the_sink_and_the_shell_notices_nothing(
        pipeline, good_run, tmp_path):
    wrong_secret = "not-the-sink-secret-" + uuid.uuid4().hex
    runs = {
        "garbage token": run_shell(shell_env(tmp_path / "garbage", pipeline.agent.endpoint,
                                             SHELLSPAN_AUTH_TOKEN="not.a.jwt")),
        "wrong secret": run_shell(shell_env(tmp_path / "wrong", pipeline.agent.endpoint,
                                            SHELLSPAN_AUTH_SECRET_FILE=secret_file(
                                                tmp_path / "wrong-secret", wrong_secret))),
    }
    for name, run in runs.items():
        # The shell notices nothing: same output as the accepted session, prompt exit, code 0.
        assert run.status == 0, (name, run.output)
        assert run.exit_s < EXIT_LIMIT_S, f"{name}: exit took {run.exit_s:.2f}s"
        assert run.output == good_run.output, name
        assert "shellspan" not in run.output and "401" not in run.output, name
        wait_spool_empty(run)  # the agent took the spans: nothing left to resend

    # The gateway forwarded each batch with its token, and the sink refused it with 401, which the
    # gateway's exporter treats as permanent (logged and dropped, not retried).
    def rejections() -> int:
        return pipeline.gateway.proc.log(tail=200_000).count("HTTP Status Code 401")

    wait_for(lambda: rejections() >= len(runs), 30, "the sink's 401s in the gateway log",
             on_fail=pipeline.logs)
    # A session sent after the rejected ones (a later valid token) is stored ...
    later = run_shell(shell_env(tmp_path / "later", pipeline.agent.endpoint,
                                SHELLSPAN_AUTH_SECRET_FILE=secret_file(tmp_path / "later")))
    assert_recorded(stored_session(pipeline.sink, later.tag, 60, pipeline.logs))
    drained(pipeline.sink)  # anything the sink accepted is stored by now
    # ... and nothing of the rejected ones: not as a session, not as a raw span.
    for name, run in runs.items():
        assert tagged(pipeline.sink, run.tag) == [], name
        assert raw_rows_for_shell(pipeline.sink, run) == 0, name
    assert raw_rows_for_shell(pipeline.sink, later) == len(COMMANDS) + 2  # + start and root


# --------------------------------------------------------------------------------------------------
# 3. gateway outage: the agent's persistent queue delivers once, later


def test_gateway_outage_the_agent_queue_delivers_the_session_once(otelcol, processes, pipeline,
                                                                  tmp_path):
    sink = pipeline.sink
    gateway = Gateway(processes, otelcol, tmp_path, sink.otlp_http_endpoint,
                      pipeline.backend.otlp_grpc_port)
    agent = Agent(processes, otelcol, tmp_path, gateway.grpc_port)
    agent.proc.start()  # the gateway is not running yet

    def logs() -> str:
        return (f"--- agent\n{agent.proc.log()}\n--- gateway\n{gateway.proc.log()}\n"
                f"--- sink\n{sink.log()[-4000:]}")

    try:
        run = run_shell(shell_env(tmp_path / "shell", agent.endpoint,
                                  SHELLSPAN_AUTH_SECRET_FILE=secret_file(tmp_path)))
        assert run.status == 0 and run.exit_s < EXIT_LIMIT_S, (run.status, run.exit_s)
        wait_spool_empty(run)  # the agent accepts the spans while the gateway is down
        # Down for a while: the agent's batch is flushed into its disk queue and retried meanwhile.
        time.sleep(4)
        assert not port_open(gateway.grpc_port)
        assert "Exporting failed" in agent.proc.log(tail=200_000), logs()
        assert tagged(sink, run.tag) == []

        gateway.proc.start()
        detail = stored_session(sink, run.tag, 60, logs)
        assert_recorded(detail)
        session_id = detail["session"]["session_id"]
        # Nothing lost, nothing twice: the session's command count is exact (above), and each
        # (trace id, span id) shows up once in deduplicated queries.
        time.sleep(1.5)  # a late re-delivery would be stored by now
        rows, distinct = raw_counts(sink, session_id)
        assert rows == distinct, (rows, distinct)
        names = sorted(raw_spans(sink, session_id).values())
        assert names.count("shell.command") == len(COMMANDS), names
        assert names.count("shell.session") == 1 and names.count("shell.session.start") == 1, names
        assert rows == len(names)
        assert tagged(sink, run.tag)[0]["command_count"] == len(COMMANDS)
    finally:
        agent.proc.stop()
        gateway.proc.stop()


# --------------------------------------------------------------------------------------------------
# 4. fan-out: the gateway also delivers the session trace to the trace backend


def test_session_trace_reaches_the_trace_backend(pipeline, good_run):
    detail = stored_session(pipeline.sink, good_run.tag, 60, pipeline.logs)
    session_id = detail["session"]["session_id"]
    expected = raw_spans(pipeline.sink, session_id)
    assert sorted(expected.values()).count("shell.command") == len(COMMANDS), expected

    backend = pipeline.backend
    print(f"trace backend: {backend.description}")
    got = wait_for(lambda: (spans := backend.trace_spans(session_id)) == expected and spans, 60,
                   f"trace {session_id} at {backend.description}",
                   on_fail=lambda: f"{backend.trace_spans(session_id)} != {expected}\n"
                                   f"{pipeline.logs()}")
    assert got == expected
    if isinstance(backend, CollectorBackend):
        # The session tokens stay between the shells and the sink.
        with backend.recorder.lock:
            assert backend.recorder.authorization
            assert set(backend.recorder.authorization) == {None}


# --------------------------------------------------------------------------------------------------
# 5. terminal recordings: output logs through agent -> gateway -> sink, with the session's token


def test_terminal_output_logs_reach_the_sink_through_the_collectors(pipeline):
    from shellspan_testing.otlp_builders import post, request_for
    from shellspan_testing.recordings import (
        RecordedCommand,
        logs_request,
        post_logs,
        recorded_session,
    )

    def session_token(sub: str, secret: str = SECRET) -> dict[str, str]:
        now = int(time.time())
        return {"Authorization": "Bearer " + jwt.encode(
            {"sub": sub, "aud": "shellspan", "iat": now, "exp": now + 300}, secret,
            algorithm="HS256")}

    rec = recorded_session([RecordedCommand("ls --color", b"\x1b[01;34mbin\x1b[0m  notes\r\n"),
                            RecordedCommand("make", b"cc -c main.c\r\nerror: no\r\n",
                                            exit_code=2)], user="collector-rec")
    forged = recorded_session([RecordedCommand("id", b"uid=0(root)\r\n")], user="collector-bad")
    agent = pipeline.agent.endpoint
    good, bad = session_token("collector-rec"), session_token("x", "wrong-" + SECRET)

    def rejections() -> int:
        return pipeline.gateway.proc.log(tail=200_000).count("HTTP Status Code 401")

    rejected_before = rejections()
    assert post(agent, request_for(rec.spans).SerializeToString(), headers=good).status == 200
    assert post_logs(agent, logs_request(rec.records).SerializeToString(),
                     headers=good).status == 200
    assert post(agent, request_for(forged.spans).SerializeToString(), headers=bad).status == 200
    assert post_logs(agent, logs_request(forged.records).SerializeToString(),
                     headers=bad).status == 200  # the agent takes it; the sink will refuse it
    sink = pipeline.sink

    def recording():
        status, _, body = sink.fetch(f"/api/sessions/{rec.session_id}/recording")
        lines = body.decode().splitlines() if status == 200 else []
        return len(lines) == 1 + len(rec.records) + 2 and lines  # header, records, 2 markers

    lines = wait_for(recording, 60, "the recording at the sink", on_fail=pipeline.logs)
    events = [json.loads(line) for line in lines[1:]]
    assert [e[2] for e in events if e[1] == "m"] == ["#1 ls --color", "#2 make"]
    assert [e[2] for e in events if e[1] != "m"] == [r.body.string_value for r in rec.records]
    rows = sink.sql("SELECT DISTINCT LogAttributes['enduser.id'], "
                    "LogAttributes['shell.auth.verified'] FROM shellspan.otel_logs "
                    f"WHERE TraceId = '{rec.session_id}'")["rows"]
    assert rows == [["collector-rec", "true"]]
    # The batch with the wrong token was refused by the sink (401) and is not stored.
    wait_for(lambda: rejections() >= rejected_before + 2, 30,
             "the sink's 401s (spans and logs) in the gateway log", on_fail=pipeline.logs)
    time.sleep(1.0)  # two WAL segment ages: anything accepted would be stored by now
    assert sink.fetch(f"/api/sessions/{forged.session_id}/recording")[0] == 404
    count = sink.sql("SELECT count() FROM shellspan.otel_logs "
                     f"WHERE TraceId = '{forged.session_id}'")["rows"][0][0]
    assert int(count) == 0


def test_shellspan_record_reaches_the_sink_through_the_collectors_with_its_token(pipeline,
                                                                                tmp_path):
    """A real `shellspan record` of bash: the agent of the shell host sends the spans and the
    terminal output (OTLP logs) through agent -> gateway with the session's own token."""
    from shellspan_testing.posix_shell_helpers import ShellEnv, rc_files
    from shellspan_testing.record_helpers import (
        RecordedTerminal,
        asciinema_cat,
        output_of,
        session_of,
        wait_recording,
    )

    env = ShellEnv(tmp_path, pipeline.agent.endpoint,
                   SHELLSPAN_AUTH_SECRET_FILE=secret_file(tmp_path / "secret"),
                   SHELLSPAN_BROKER_SOCKET="off")
    term = RecordedTerminal(rc_files(env, "bash"), env.env)
    try:
        sid = session_of(term.pid)
        term.run("ls --color=always /")
        term.run("echo recorded through $((6 * 7)) collectors")
        assert term.finish("exit 2") == 2
        sink = pipeline.sink
        try:
            wait_recording(sink, sid, lambda _h, ev: output_of(ev) == term.output(), 90)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{pipeline.logs()}") from exc
        assert asciinema_cat(sink, sid, tmp_path) == term.output()
        user = login_name()
        rows = sink.sql("SELECT DISTINCT LogAttributes['enduser.id'], "
                        "LogAttributes['shell.auth.verified'] FROM shellspan.otel_logs "
                        f"WHERE TraceId = '{sid}'")["rows"]
        assert rows == [[user, "true"]]
        detail = sink.wait_for(lambda: (d := sink.session(sid))["session"]["end_time"] and d, 60)
        assert (detail["session"]["enduser_id"], detail["session"]["verified"]) == (user, True)
        spans = {c["command"]: c["span_id"] for c in detail["commands"]}
        rows = sink.sql("SELECT data, span_id FROM shellspan.shell_recordings FINAL "
                        f"WHERE session_id = '{sid}' AND event = 'o'")["rows"]
        owners = {span for data, span in rows if "recorded through 42 collectors\r\n" in data}
        assert owners == {spans["echo recorded through $((6 * 7)) collectors"]}
    finally:
        term.close()
        env.stop_agent()
