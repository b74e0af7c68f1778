"""The sender, the outcome of a send and the circuit breaker, against a real local HTTP server."""

from __future__ import annotations

import http.server
import threading

import pytest

from shellspan.config import Config
from shellspan.export import Exporter
from shellspan.otlp import SpanData, new_span_id, new_trace_id
from shellspan.transport import CircuitBreaker, HttpSender, Outcome, SendResult, classify
from shellspan_testing.background import wait_for
from shellspan_testing.sinkproc import free_port


class Endpoint:
    """A real OTLP/HTTP-shaped server: answers every POST with ``status`` (and Retry-After),
    and keeps the bodies it was sent."""

    def __init__(self, port: int = 0, status: int = 200, retry_after: str | None = None) -> None:
        self.status, self.retry_after = status, retry_after
        self.bodies: list[bytes] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(body)
                self.send_response(outer.status)
                if outer.retry_after is not None:
                    self.send_header("Retry-After", outer.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    servers: list[Endpoint] = []

    def make(**kw) -> Endpoint:
        servers.append(Endpoint(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("status,retry_after,outcome,delay", [
    (200, None, Outcome.OK, None),
    (429, "7", Outcome.RETRYABLE, 7.0),
    (503, None, Outcome.RETRYABLE, None),
    (503, "Wed, 21 Oct 2015 07:28:00 GMT", Outcome.RETRYABLE, None),
    (400, None, Outcome.PERMANENT, None),
    (401, "3", Outcome.PERMANENT, None),
])
def test_answers_are_classified_as_otlp_clients_must(status, retry_after, outcome, delay):
    r = classify(status, retry_after)
    assert (r.outcome, r.status, r.retry_after, r.answered) == (outcome, status, delay, True)


def test_sender_reports_status_retry_after_and_no_answer(endpoint):
    ep = endpoint(status=503, retry_after="4")
    sender = HttpSender(ep.url, timeout_s=2.0)
    r = sender.send(b"\x0a\x00")
    assert (r.outcome, r.status, r.retry_after) == (Outcome.RETRYABLE, 503, 4.0)
    ep.status, ep.retry_after = 200, None
    assert sender.send(b"x").outcome is Outcome.OK
    assert sender.probe().outcome is Outcome.OK and ep.bodies[-1] == b""  # empty: no spans
    dead = HttpSender(f"http://127.0.0.1:{free_port()}/v1/traces", timeout_s=1.0)
    r = dead.send(b"x")
    assert r.outcome is Outcome.RETRYABLE and not r.answered and "Refused" in r.error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NO_ANSWER = SendResult(Outcome.RETRYABLE, error="ConnectionRefusedError()")


def test_breaker_probes_an_endpoint_that_does_not_answer():
    clock = Clock()
    b = CircuitBreaker(probe_s=1.0, clock=clock)
    assert b.allow() and b.wait_s() is None
    for _ in range(50):  # however long the outage, the next probe is a second away
        b.record(NO_ANSWER)
        assert b.state == b.PROBING and not b.allow() and not b.probe_due()
        assert b.wait_s() == 1.0
        clock.now += 1.0
        assert b.probe_due()
    assert b.record(SendResult(Outcome.OK, 200)) is True  # closed by the first answer
    assert b.allow() and b.state == b.CLOSED
    assert b.record(SendResult(Outcome.OK, 200)) is False  # already closed


def test_breaker_backs_off_from_an_endpoint_that_refuses():
    clock = Clock()
    b = CircuitBreaker(base_s=2.0, max_s=300.0, clock=clock)
    waits = []
    for _ in range(10):
        b.record(classify(503))
        assert b.state == b.BACKING_OFF and not b.allow() and not b.probe_due()
        waits.append(b.wait_s())
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    b.record(classify(429, "12"))  # Retry-After wins over the back-off
    assert b.wait_s() == 12.0
    clock.now += 12.0
    assert b.allow()  # one try when the wait is over
    b.record(NO_ANSWER)  # it went silent: probing now
    assert b.state == b.PROBING
    b.record(classify(400))  # an answer, even a refusal of the data, closes it
    assert b.state == b.CLOSED and b.failures == 0


def _span() -> SpanData:
    return SpanData(new_trace_id(), new_span_id(), "shell.command", 1, 2)


@pytest.mark.slow
def test_exporter_probes_through_an_outage_and_delivers_the_spool_when_the_endpoint_is_back(
        tmp_path, endpoint):
    """How soon is bench/bench_recovery.py's to measure; here: probes while the endpoint is
    down, the spool drained once it is back, new spans straight out."""
    port = free_port()
    cfg = Config({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                  "SHELLSPAN_SPOOL_DIR": str(tmp_path / "spool"),
                  "SHELLSPAN_START_DELAY_MS": "0"})
    exp = Exporter(cfg)
    exp.start()
    for _ in range(3):
        exp.submit(_span())
    wait_for(lambda: exp.status().spooled_entries >= 1
             and exp.breaker.state == CircuitBreaker.PROBING, 10, "a spooled batch and probing",
             0.02, lambda: vars(exp.status()))
    assert exp.status().breaker_open
    wait_for(lambda: exp.stats["probes"] >= 2, 30, "two probes of the silent endpoint", 0.02)
    ep = endpoint(port=port)
    wait_for(lambda: not exp.status().spooled_entries, 30, "the spool to drain", 0.02,
             lambda: vars(exp.status()))
    assert not exp.status().breaker_open and exp.status().last_success > 0
    assert len([b for b in ep.bodies if b]) == exp.stats["resent_batches"] >= 1
    exp.submit(_span())  # and new spans go straight out
    assert exp.flush(5.0)
    assert exp.stats["sent_spans"] >= 1


def test_exporter_backs_off_from_a_refusing_endpoint_without_probing(tmp_path, endpoint):
    ep = endpoint(status=503, retry_after="30")
    cfg = Config({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ep.url,
                  "SHELLSPAN_SPOOL_DIR": str(tmp_path / "spool"), "SHELLSPAN_START_DELAY_MS": "0"})
    exp = Exporter(cfg)
    exp.start()
    exp.submit(_span())
    wait_for(lambda: exp.breaker.state == CircuitBreaker.BACKING_OFF, 10, "backing off", 0.02)
    sent = len(ep.bodies)
    exp.submit(_span())  # spooled without a try: the endpoint asked for 30 s
    wait_for(lambda: exp.status().spooled_entries == 2, 10, "the second batch spooled", 0.02,
             lambda: vars(exp.status()))
    assert len(ep.bodies) == sent and exp.stats["probes"] == 0
    assert exp.breaker.wait_s() > 25


def test_a_durable_span_is_on_disk_at_once_and_removed_once_sent(tmp_path, endpoint):
    port = free_port()
    cfg = Config({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                  "SHELLSPAN_SPOOL_DIR": str(tmp_path / "spool"), "SHELLSPAN_START_DELAY_MS": "0"})
    exp = Exporter(cfg)
    start = _span()
    exp.submit_durable(start)
    assert exp.spool.size()[0] == 1  # on disk before any thread runs: survives a kill -9
    exp.submit(_span())
    exp.start()
    wait_for(lambda: exp.breaker.state == CircuitBreaker.PROBING, 10, "probing", 0.02)
    assert exp.status().spooled_entries == 2  # the durable entry, and the batch without it
    ep = endpoint(port=port)
    wait_for(lambda: not exp.status().spooled_entries, 20, "the spool to drain", 0.02)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    ids = [s.span_id for b in ep.bodies if b
           for rs in ExportTraceServiceRequest.FromString(b).resource_spans
           for ss in rs.scope_spans for s in ss.spans]
    assert ids.count(start.span_id) == 1 and len(ids) == 2
