"""The collector configs in collector_config/, checked with a collector built from them.

The module fixture builds (or takes from the cache) the collector with collector_config/build.sh;
where no Go toolchain exists the whole module is skipped with the reason printed. Everything else
runs the real collector binary on loopback ports: `validate` for every config (and for broken ones,
which must fail), and the agent -> gateway chain end to end with the OpenTelemetry Python SDK as the
sender and small in-process OTLP receivers standing in for the sink (OTLP/HTTP) and the trace
backend (OTLP/gRPC), which record what arrives; and the gateway in front of the real sink.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shellspan import semconv
from shellspan_testing.background import Process, go_command, port_open, wait_for
from shellspan_testing.sinkproc import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector_config"
BUILD_SCRIPT = CONFIG_DIR / "build.sh"
CONFIGS = ["agent.yaml", "gateway.yaml", "clickhouse-direct.yaml"]

# The first build downloads modules and compiles the collector (minutes on 2 cores); it happens in
# the module fixture, whose time counts against the first test that uses it.
pytestmark = pytest.mark.timeout(1500)


# --------------------------------------------------------------------------------------------------
# the binary


@pytest.fixture(scope="module")
def otelcol() -> Path:
    started = time.monotonic()
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                          timeout=1200, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    if proc.returncode == 3:
        reason = f"collector not built, no Go toolchain: {proc.stderr.strip()}"
        print(reason)
        pytest.skip(reason)
    assert proc.returncode == 0, f"build.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    binary = Path(proc.stdout.strip().splitlines()[-1])
    assert binary.is_file() and os.access(binary, os.X_OK), binary
    print(f"collector binary {binary} ready in {elapsed:.1f}s")
    return binary


def run_validate(binary: Path, config: Path, env: dict[str, str] | None = None):
    return subprocess.run([str(binary), "validate", f"--config={config}"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)


def test_build_is_cached(otelcol):
    """A second run finds the cached binary: same path, no rebuild, quickly."""
    started = time.monotonic()
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(otelcol)
    assert "cached" in proc.stderr
    assert time.monotonic() - started < 30


def test_build_without_go_exits_3(tmp_path):
    """No usable Go (GO names a missing file, PATH has no go): exit code 3 with a message, which is
    the documented signal for callers to skip."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("bash", "dirname"):
        (fake_bin / tool).symlink_to(next(Path(d, tool) for d in ("/usr/bin", "/bin")
                                          if Path(d, tool).exists()))
    env = {"PATH": str(fake_bin), "HOME": str(tmp_path), "GO": str(tmp_path / "no-such-go")}
    proc = subprocess.run([str(fake_bin / "bash"), str(BUILD_SCRIPT)], capture_output=True,
                          text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3, proc.stderr
    assert "no Go toolchain" in proc.stderr
    assert proc.stdout == ""


# --------------------------------------------------------------------------------------------------
# validate


def queue_env(tmp_path: Path) -> dict[str, str]:
    return {name: str(tmp_path / name.lower()) for name in (
        "SHELLSPAN_AGENT_QUEUE_DIR", "SHELLSPAN_GATEWAY_QUEUE_DIR", "SHELLSPAN_CLICKHOUSE_QUEUE_DIR")}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates(otelcol, tmp_path, name):
    proc = run_validate(otelcol, CONFIG_DIR / name, queue_env(tmp_path))
    assert proc.returncode == 0, f"{name} does not validate:\n{proc.stdout}\n{proc.stderr}"


# name: (config, text to replace, replacement, a phrase the collector's error must contain)
BROKEN = {
    # a component type the binary does not have
    "unknown-exporter": ("agent.yaml", "otlp_grpc/gateway:", "no_such_exporter/gateway:",
                         "no_such_exporter"),
    # headers_setter with neither value nor from_context
    "header-without-source": ("gateway.yaml", "from_context: authorization", "default_value: x",
                              "missing header source"),
    # a pipeline that names an exporter that is not defined
    "undefined-exporter": ("gateway.yaml", "exporters: [otlp_http/sink, otlp_grpc/backend]",
                           "exporters: [otlp_http/sink, otlp_grpc/nowhere]", "otlp_grpc/nowhere"),
    # the ClickHouse exporter without an endpoint
    "clickhouse-no-endpoint": ("clickhouse-direct.yaml",
                               "endpoint: ${env:SHELLSPAN_CLICKHOUSE_ENDPOINT:-tcp://127.0.0.1:9000}",
                               "compress: lz4", "endpoint"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_fails_validation(otelcol, tmp_path, case):
    name, old, new, phrase = BROKEN[case]
    text = (CONFIG_DIR / name).read_text()
    assert text.count(old) == 1, f"{case}: the config changed, update the test"
    broken = tmp_path / f"{case}.yaml"
    broken.write_text(text.replace(old, new))
    proc = run_validate(otelcol, broken, queue_env(tmp_path))
    assert proc.returncode != 0, f"{case} validated although it is broken:\n{proc.stderr}"
    assert phrase in proc.stderr, proc.stderr


def test_undefined_queue_storage_fails_at_start(otelcol, tmp_path):
    """`validate` does not resolve a sending queue's storage reference; starting does, and fails."""
    text = (CONFIG_DIR / "agent.yaml").read_text()
    broken = tmp_path / "agent-no-storage.yaml"
    broken.write_text(text.replace("storage: file_storage/queue", "storage: file_storage/none"))
    assert run_validate(otelcol, broken, queue_env(tmp_path)).returncode == 0
    env = {**os.environ, **queue_env(tmp_path),
           "SHELLSPAN_AGENT_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
           "SHELLSPAN_AGENT_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
           "SHELLSPAN_AGENT_METRICS_PORT": str(free_port()),
           "SHELLSPAN_GATEWAY_ENDPOINT": f"127.0.0.1:{free_port()}"}
    proc = subprocess.run([str(otelcol), f"--config={broken}"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "no storage client extension found" in proc.stderr, proc.stderr[-3000:]


def component_ids(config_text: str) -> dict[str, set[str]]:
    """Component types per section of a collector config (the 2-space keys of the sections)."""
    found: dict[str, set[str]] = {}
    section = None
    for line in config_text.splitlines():
        top = re.match(r"^(\w+):", line)
        if top:
            section = top.group(1)
            continue
        key = re.match(r"^  ([\w/]+):", line)
        if key and section in ("receivers", "processors", "exporters", "extensions"):
            found.setdefault(section, set()).add(key.group(1).split("/")[0])
    return found


def test_binary_has_exactly_the_components_the_configs_use(otelcol):
    used: dict[str, set[str]] = {}
    for name in CONFIGS:
        for section, types in component_ids((CONFIG_DIR / name).read_text()).items():
            used.setdefault(section, set()).update(types)
    out = subprocess.run([str(otelcol), "components"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    built: dict[str, set[str]] = {}
    section = None
    for line in out.splitlines():
        top = re.match(r"^(\w+):", line)
        if top:
            section = top.group(1)
        name = re.match(r"^    - name: (\S+)", line)
        if name and section in ("receivers", "processors", "exporters", "extensions"):
            built.setdefault(section, set()).add(name.group(1))
    assert used == built
    assert used["exporters"] == {"otlp_grpc", "otlp_http", "clickhouse"}
    # ... and each at the version the manifest pins (nothing pulled forward by another module).
    pinned = set(re.findall(r"^\s*- gomod: (\S+ v\S+)", (CONFIG_DIR / "builder-config.yaml")
                            .read_text(), re.M))
    modules = set(re.findall(r"^\s+module: (\S+ v\S+)", out, re.M))
    assert modules == pinned


def test_headerssetter_go_tests(otelcol):
    """The local headers_setter stand-in's own Go tests (config keys, actions, HTTP and gRPC)."""
    go = go_command()
    assert go, "the collector was built, so Go must be there"
    proc = subprocess.run([go, "test", "-count=1", "./..."], cwd=CONFIG_DIR / "headerssetter",
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout


# --------------------------------------------------------------------------------------------------
# stand-ins for the sink and the trace backend


def decode_spans(body: bytes) -> list[tuple[str, str]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return [(span.trace_id.hex(), span.span_id.hex())
            for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans]


class Recorder:
    """What a stand-in received: (authorization or None, [(trace id, span id)]) per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str | None, list[tuple[str, str]]]] = []

    def add(self, auth: str | None, spans: list[tuple[str, str]]) -> None:
        with self.lock:
            self.requests.append((auth, spans))

    def spans(self) -> list[tuple[str, str]]:
        with self.lock:
            return [s for _, spans in self.requests for s in spans]

    def span_ids(self) -> set[str]:
        return {span_id for _, span_id in self.spans()}


class HttpSinkStandIn:
    """An OTLP/HTTP traces receiver (protobuf, gzip or not) that records each request."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        recorder = self.recorder

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                recorder.add(self.headers.get("Authorization"), decode_spans(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcBackendStandIn:
    """An OTLP/gRPC TraceService that records each call's authorization metadata and spans."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.recorder = Recorder()
        recorder = self.recorder

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 (generated name)
                md = dict(context.invocation_metadata())
                recorder.add(md.get("authorization"), decode_spans(request.SerializeToString()))
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self) -> None:
        self.server.stop(grace=None)


@pytest.fixture
def sink_standin():
    s = HttpSinkStandIn()
    yield s
    s.close()


@pytest.fixture
def backend_standin():
    b = GrpcBackendStandIn()
    yield b
    b.close()


# --------------------------------------------------------------------------------------------------
# collector processes


class Collector(Process):
    """One collector process running a config from collector_config/ with env overrides."""

    def __init__(self, binary: Path, config: str, env: dict[str, str], log_path: Path,
                 ready_port: int) -> None:
        super().__init__([str(binary), f"--config={CONFIG_DIR / config}"], log_path, [ready_port],
                         env)


@pytest.fixture
def collectors():
    started: list[Collector] = []

    def make(*args, **kwargs) -> Collector:
        c = Collector(*args, **kwargs)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def gateway_env(tmp_path: Path, grpc_port: int, http_port: int, sink_endpoint: str,
                backend_port: int) -> dict[str, str]:
    return {
        "SHELLSPAN_GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "SHELLSPAN_GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "SHELLSPAN_GATEWAY_QUEUE_DIR": str(tmp_path / "gateway-queue"),
        "SHELLSPAN_GATEWAY_METRICS_PORT": str(free_port()),
        "SHELLSPAN_GATEWAY_RETRY_MAX_INTERVAL": "2s",
        "SHELLSPAN_SINK_ENDPOINT": sink_endpoint,
        "SHELLSPAN_TRACE_BACKEND_ENDPOINT": f"127.0.0.1:{backend_port}",
    }


def agent_env(tmp_path: Path, grpc_port: int, http_port: int, gateway_grpc_port: int):
    return {
        "SHELLSPAN_AGENT_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "SHELLSPAN_AGENT_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "SHELLSPAN_AGENT_QUEUE_DIR": str(tmp_path / "agent-queue"),
        "SHELLSPAN_AGENT_METRICS_PORT": str(free_port()),
        "SHELLSPAN_AGENT_RETRY_MAX_INTERVAL": "2s",
        "SHELLSPAN_GATEWAY_ENDPOINT": f"127.0.0.1:{gateway_grpc_port}",
    }


def send_session(endpoint: str, token: str, n_commands: int) -> tuple[str, set[str]]:
    """One shell-like trace through the real SDK and OTLP/HTTP exporter; returns (trace id, span
    ids). The exporter must succeed: the agent accepted every span."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    results: list[SpanExportResult] = []

    class Checked(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            results.append(result)
            return result

    exporter = Checked(endpoint=f"{endpoint}/v1/traces", timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "shellspan-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test_collector_configs")
    span_ids = set()
    with tracer.start_as_current_span(semconv.SPAN_SESSION) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        span_ids.add(format(root.get_span_context().span_id, "016x"))
        for i in range(n_commands):
            with tracer.start_as_current_span(semconv.SPAN_COMMAND,
                                              attributes={semconv.COMMAND_SEQ: i}) as span:
                span_ids.add(format(span.get_span_context().span_id, "016x"))
    provider.shutdown()
    assert results and all(r == SpanExportResult.SUCCESS for r in results), results
    return trace_id, span_ids


# --------------------------------------------------------------------------------------------------
# end to end: SDK -> agent -> gateway -> sink stand-in + backend stand-in


def test_agent_gateway_forwards_authorization_and_spans(otelcol, tmp_path, collectors,
                                                         sink_standin, backend_standin):
    gw_grpc, gw_http, ag_grpc, ag_http = (free_port() for _ in range(4))
    gateway = collectors(otelcol, "gateway.yaml",
                         gateway_env(tmp_path, gw_grpc, gw_http, sink_standin.endpoint,
                                     backend_standin.port),
                         tmp_path / "gateway.log", gw_grpc).start()
    agent = collectors(otelcol, "agent.yaml", agent_env(tmp_path, ag_grpc, ag_http, gw_grpc),
                       tmp_path / "agent.log", ag_http).start()

    # Two sessions with different tokens: each token must arrive with its own spans only.
    tokens = {"tok-alpha.eyJzdWIiOiJhIn0.sig-a": 20, "tok-beta.eyJzdWIiOiJiIn0.sig-b": 7}
    sent: dict[str, tuple[str, set[str]]] = {}
    for token, n in tokens.items():
        sent[token] = send_session(f"http://127.0.0.1:{ag_http}", token, n)
    all_ids = set().union(*(ids for _, ids in sent.values()))
    assert len(all_ids) == sum(tokens.values()) + len(tokens)

    def logs() -> str:
        return f"--- agent\n{agent.log()}\n--- gateway\n{gateway.log()}"

    wait_for(lambda: sink_standin.recorder.span_ids() >= all_ids, 60, "spans at the sink",
             on_fail=logs)
    wait_for(lambda: backend_standin.recorder.span_ids() >= all_ids, 60,
             "spans at the trace backend", on_fail=logs)

    # The Authorization header arrives intact, and batches never mix tokens.
    trace_token = {trace_id: token for token, (trace_id, _) in sent.items()}
    for auth, spans in sink_standin.recorder.requests:
        assert spans, "empty export request"
        tokens_in_request = {trace_token[trace_id] for trace_id, _ in spans}
        assert len(tokens_in_request) == 1, tokens_in_request
        assert auth == f"Bearer {tokens_in_request.pop()}"
    # Every span exactly once at the sink (no retries happened in this run).
    received = sink_standin.recorder.spans()
    assert len(received) == len(set(received)) == len(all_ids)
    # The session tokens are not sent to the trace backend.
    assert all(auth is None for auth, _ in backend_standin.recorder.requests)


def test_agent_queue_delivers_after_gateway_outage(otelcol, tmp_path, collectors, sink_standin,
                                                   backend_standin):
    gw_grpc, gw_http, ag_grpc, ag_http = (free_port() for _ in range(4))
    token = "tok-outage.eyJzdWIiOiJvIn0.sig-o"
    agent = collectors(otelcol, "agent.yaml", agent_env(tmp_path, ag_grpc, ag_http, gw_grpc),
                       tmp_path / "agent.log", ag_http).start()
    gateway = collectors(otelcol, "gateway.yaml",
                         gateway_env(tmp_path, gw_grpc, gw_http, sink_standin.endpoint,
                                     backend_standin.port),
                         tmp_path / "gateway.log", gw_grpc)

    def logs() -> str:
        return f"--- agent\n{agent.log()}\n--- gateway\n{gateway.log()}"

    # The gateway is down: the agent still accepts every span (into its on-disk queue).
    sent: set[str] = set()
    for _ in range(3):
        sent |= send_session(f"http://127.0.0.1:{ag_http}", token, 40)[1]
    # ... and keeps them across its own restart while the gateway is still down.
    time.sleep(3)
    agent.stop()
    assert not sink_standin.recorder.requests
    agent.start()
    sent |= send_session(f"http://127.0.0.1:{ag_http}", token, 10)[1]
    time.sleep(3)
    assert not sink_standin.recorder.requests
    assert not port_open(gw_grpc)

    # The gateway comes back: everything queued arrives, with the token, none lost.
    gateway.start()
    wait_for(lambda: sink_standin.recorder.span_ids() >= sent, 120,
             f"{len(sent)} spans at the sink after the outage", on_fail=logs)
    assert sink_standin.recorder.span_ids() == sent
    assert {auth for auth, _ in sink_standin.recorder.requests} == {f"Bearer {token}"}


# --------------------------------------------------------------------------------------------------
# end to end with the real sink: SDK -> gateway -> shellspan-sink


def test_gateway_to_real_sink(otelcol, tmp_path, collectors, sink, backend_standin):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    gw_grpc, gw_http = free_port(), free_port()
    gateway = collectors(otelcol, "gateway.yaml",
                         gateway_env(tmp_path, gw_grpc, gw_http, sink.otlp_http_endpoint,
                                     backend_standin.port),
                         tmp_path / "gateway.log", gw_http).start()

    provider = TracerProvider(resource=Resource.create({
        "service.name": "shellspan", "host.name": "collector-test-host"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{gw_http}/v1/traces", timeout=10,
        headers={"Authorization": "Bearer not-checked-with-auth-off"})))
    tracer = provider.get_tracer("test_collector_configs")
    identity = {semconv.SHELL_TYPE: "bash", semconv.USER_NAME: "collector-test",
                semconv.PROCESS_PID: 4242}
    with tracer.start_as_current_span(semconv.SPAN_SESSION, attributes=identity) as root:
        session_id = format(root.get_span_context().trace_id, "032x")
        with tracer.start_as_current_span(semconv.SPAN_SESSION_START, attributes=identity):
            pass
        for i in range(3):
            with tracer.start_as_current_span(semconv.SPAN_COMMAND, attributes={
                    semconv.COMMAND_SEQ: i, semconv.COMMAND_LINE: f"echo {i}"}):
                pass
    provider.shutdown()

    def found():
        return [s for s in sink.sessions() if s.get("session_id") == session_id]

    try:
        sessions = sink.wait_for(found, timeout=60)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- gateway\n{gateway.log()}\n--- sink\n{sink.log()}") from exc
    assert len(sessions) == 1
    assert sessions[0]["state"] == "ended" and sessions[0]["shell_type"] == "bash", sessions[0]
    assert sessions[0]["command_count"] == 3, sessions[0]
    detail = sink.session(session_id)
    assert [(c["seq"], c["command"]) for c in detail["commands"]] == [
        (0, "echo 0"), (1, "echo 1"), (2, "echo 2")], detail
