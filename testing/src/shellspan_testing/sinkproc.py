"""Run the real sink as a child process on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .background import wait_for

REPO = Path(__file__).resolve().parents[3]
SINK_BIN = Path(sys.executable).with_name("shellspan-sink")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SinkProcess:
    """A `shellspan-sink serve` process with its own chDB store and ports."""

    def __init__(self, data_dir: Path, *, store: str | None = None, extra_args: list[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.store = store or f"chdb://{self.data_dir / 'store'}"
        self.http_port, self.grpc_port, self.api_port = free_port(), free_port(), free_port()
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.read_token: str | None = None  # sent with API calls when the sink requires one
        self.log_path = self.data_dir / "sink.log"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 60.0) -> SinkProcess:
        """Launch the sink and wait until /health says ok."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> SinkProcess:
        """Start the process without waiting for it (see `start_all`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(SINK_BIN), "serve", "--store", self.store,
               "--otlp-http", f"127.0.0.1:{self.http_port}",
               "--otlp-grpc", f"127.0.0.1:{self.grpc_port}",
               "--api", f"127.0.0.1:{self.api_port}", *self.extra_args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child's lifetime
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 60.0, status: tuple[str, ...] = ("ok",)) -> SinkProcess:
        """Wait until /health answers with one of `status` (the sink process must be running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sink exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.health()[1].get("status") in status:
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"sink did not become healthy:\n{self.log()}")

    def health(self) -> tuple[int, dict]:
        """(HTTP status, body) of /health, whatever the status."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.api_url}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(self._request(url), timeout=30) as resp:
            return json.loads(resp.read())

    def fetch(self, path: str, **params: Any) -> tuple[int, str, bytes]:
        """(HTTP status, Content-Type, body) of an API GET, whatever the status."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.api_url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(self._request(url), timeout=60) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    def sql(self, statement: str) -> dict:
        """Read-only SQL through the sink (the embedded store belongs to the sink's process)."""
        request = self._request(f"{self.api_url}/api/sql", data=statement.encode())
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())

    def call(self, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
             token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body) of an API call, whatever the status; a `body` is sent
        as JSON in a POST. Uses `token` if given, else the sink's read token."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.api_url}{path}" + (f"?{query}" if query else ""),
                                         data=data, method="POST" if data is not None else "GET",
                                         headers=headers or {})
        if token or self.read_token:
            request.add_header("Authorization", f"Bearer {token or self.read_token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def _request(self, url: str, data: bytes | None = None) -> urllib.request.Request:
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        if self.read_token:
            request.add_header("Authorization", f"Bearer {self.read_token}")
        return request

    def sessions(self, **filters: Any) -> list[dict]:
        return self.get("/api/sessions", **filters)["sessions"]

    def session(self, session_id: str) -> dict:
        return self.get(f"/api/sessions/{session_id}")

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0,
                 interval: float = 0.05) -> Any:
        """Poll `predicate` until it returns something truthy; return that value. A request the
        sink cannot answer yet (404 before a session is stored, a refused connection) counts as
        not yet."""
        errors: list[Exception] = []

        def attempt() -> Any:
            try:
                return predicate()
            except (urllib.error.URLError, KeyError, OSError) as exc:
                errors[:] = [exc]
                return None

        return wait_for(attempt, timeout, "a condition at the sink", interval,
                        lambda: f"last error: {errors[0] if errors else None}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def start_all(*sinks: SinkProcess, timeout: float = 60.0) -> tuple[SinkProcess, ...]:
    """Start several sinks at once (their start-ups overlap) and wait until all are healthy."""
    for sink in sinks:
        sink.launch()
    for sink in sinks:
        sink.wait_ready(timeout)
    return sinks


@contextmanager
def running(*sinks: SinkProcess) -> Iterator[tuple[SinkProcess, ...]]:
    """`start_all` the sinks for the block; stop them after it, whatever happens."""
    try:
        yield start_all(*sinks)
    finally:
        for sink in sinks:
            sink.stop()


def open_body(port: int, length: int, sent: int = 0, path: str = "/v1/traces") -> socket.socket:
    """An OTLP/HTTP POST to `path` that announces `length` body bytes and sends `sent` of them,
    then waits (the connection stays open until closed)."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: sink\r\nContent-Type: application/x-protobuf"
                 f"\r\nContent-Length: {length}\r\n\r\n".encode())
    if sent:
        conn.sendall(b"\0" * sent)
    return conn


def read_head(conn: socket.socket, timeout: float = 10.0) -> bytes:
    """The status line and headers the sink answers on `conn` (b"" if it closed first)."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def drained(sink: SinkProcess, timeout: float = 300) -> None:
    """Wait until the sink's WALs are empty: every acknowledged span and log record is in
    ClickHouse.

    Polls every 0.2 s: each /health asks the store, which competes with the inserts a benchmark
    is timing."""
    def empty() -> bool:
        health = sink.get("/health")
        return health["wal"]["pending_bytes"] == 0 and \
            health.get("logs", {}).get("wal", {}).get("pending_bytes", 0) == 0

    sink.wait_for(empty, timeout=timeout, interval=0.2)


def send_until_acked(port_of: Callable[[], int], body: bytes, deadline: float,
                     path: str = "/v1/traces") -> int:
    """POST like an OTLP exporter until acknowledged: on a refused connection or a retryable
    status, try again. Returns the attempts it took."""
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port_of(), timeout=10)
            conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return attempts
            assert status in (429, 502, 503, 504), status
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("request never acknowledged")


def send_all(port: int, bodies: list[bytes], clients: int, path: str = "/v1/traces") -> float:
    """POST every body over `clients` keep-alive connections; return elapsed seconds."""
    chunks = [bodies[i::clients] for i in range(clients)]
    errors: list[str] = []

    def client(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in chunk:
            while True:
                conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    break
                if resp.status not in (429, 503):
                    errors.append(f"HTTP {resp.status}")
                    return
                time.sleep(float(resp.getheader("Retry-After", "1")))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"sends failed: {errors[:3]}")
    return time.perf_counter() - started
