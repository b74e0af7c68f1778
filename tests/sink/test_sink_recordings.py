"""Terminal recordings through the real sink: OTLP log records sent as the shell side sends them
(official protobuf classes, per the recording contract) over HTTP (protobuf, JSON, gzip) and
gRPC; stored once however often delivered; exported as asciicast v2 that the real `asciinema`
program plays back; the screen at a command's end and excerpts rendered by a VT emulator."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import jwt
import pexpect
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

from shellspan import semconv
from shellspan_sink.terminal import Terminal
from shellspan_testing.otlp_builders import kv, post, request_for
from shellspan_testing.recordings import (
    RecordedCommand,
    logs_request,
    post_logs,
    record,
    recorded_session,
    store_recording,
    stored_records,
    to_otlp_json,
)
from shellspan_testing.recordings import wait_recording_stored as wait_stored
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess, send_until_acked

ASCIINEMA = Path(sys.executable).with_name("asciinema")
SECRET = "recordings-secret-0123456789abcdef0123"

VIM_OPEN = "\x1b[?1049h\x1b[22;0;0t\x1b[H\x1b[2J~\r\n~\r\n~\r\n\x1b[24;1H\"notes.txt\" [New]"
VIM_CLOSE = "\x1b[24;1H\x1b[K\x1b[?1049l\x1b[23;0;0t"


def commands() -> list[RecordedCommand]:
    listing = "".join(f"\x1b[01;34mdir{i}\x1b[0m  file{i}.txt\r\n" for i in range(30))
    return [
        RecordedCommand("ls --color", listing.encode(), duration_s=0.3),
        RecordedCommand("false", b"", exit_code=1, duration_s=0.05),
        RecordedCommand("echo héllo wörld", "héllo wörld\r\n".encode(), duration_s=0.05),
        RecordedCommand("vim notes.txt", (VIM_OPEN + VIM_CLOSE).encode(), duration_s=1.0,
                        resize_to=(100, 30)),
        RecordedCommand("cat big.log", b"".join(b"line %05d of the log\r\n" % i
                                                for i in range(2000)), duration_s=0.4),
    ]


def shown_text(rec) -> str:
    """Everything the terminal was sent, in order (what `asciinema cat` writes back)."""
    return "".join(r.body.string_value for r in rec.records
                   if r.attributes[1].value.string_value == "o")


def asciicast(sink: SinkProcess, session_id: str, **params) -> tuple[dict, list[list]]:
    status, ctype, body = sink.fetch(f"/api/sessions/{session_id}/recording", **params)
    assert status == 200, body
    assert ctype.startswith("application/x-asciicast")
    lines = body.decode().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


@pytest.fixture(scope="module")
def recorded(module_sink):
    rec = recorded_session(commands(), user="rec-alice", host="rec-host")
    store_recording(module_sink, rec)
    return rec


def test_asciicast_holds_every_record_in_order_with_a_marker_per_command(module_sink, recorded):
    head, events = asciicast(module_sink, recorded.session_id)
    assert head["version"] == 2 and (head["width"], head["height"]) == (80, 24)
    assert head["env"] == {"TERM": "xterm-256color", "SHELL": "/bin/bash"}
    assert head["timestamp"] == recorded.spec.start_ns // 10**9
    assert "rec-alice@rec-host" in head["title"]
    times = [e[0] for e in events]
    assert times == sorted(times) and times[0] == 0
    plain = [e for e in events if e[1] != "m"]
    assert [(e[1], e[2]) for e in plain] == [
        (r.attributes[1].value.string_value, r.body.string_value) for r in recorded.records]
    markers = [e[2] for e in events if e[1] == "m"]
    assert markers == ["#1 ls --color", "#2 false", "#3 echo héllo wörld", "#4 vim notes.txt",
                       "#5 cat big.log"]
    # each marker comes right before its command's first output, after the echoed command line
    for i, e in enumerate(events):
        if e[1] == "m" and e[2] in ("#1 ls --color", "#5 cat big.log"):
            assert events[i - 1][2].startswith("$ ") and events[i + 1][1] == "o"
            assert not events[i + 1][2].startswith("$ ")


def test_the_real_asciinema_plays_the_export_back(module_sink, recorded, tmp_path):
    cast = tmp_path / "session.cast"
    done = subprocess.run([str(SINK_BIN), "sessions", "export", recorded.session_id, "--format",
                           "asciicast", "-o", str(cast), "--api", module_sink.api_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cast.read_bytes() == module_sink.fetch(
        f"/api/sessions/{recorded.session_id}/recording")[2]
    played = subprocess.run([str(ASCIINEMA), "cat", str(cast)], capture_output=True, timeout=60,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert played.returncode == 0, played.stderr
    assert played.stdout.decode() == shown_text(recorded)


def test_from_seq_starts_at_that_command_with_the_size_in_force(module_sink, recorded):
    head, events = asciicast(module_sink, recorded.session_id, from_seq=5)
    assert (head["width"], head["height"]) == (100, 30)  # vim's run resized the window
    assert events[0] == [0.0, "m", "#5 cat big.log"]
    assert events[1][2].startswith("line 00000 of the log\r\n")
    assert [e[2] for e in events if e[1] == "m"] == ["#5 cat big.log"]
    head3, events3 = asciicast(module_sink, recorded.session_id, from_seq=3)
    assert events3[0][2] == "#3 echo héllo wörld" and events3[1][2] == "héllo wörld\r\n"
    status, _, body = module_sink.fetch(f"/api/sessions/{recorded.session_id}/recording",
                                        from_seq=99)
    assert status == 404 and b"no command #99" in body


def test_from_a_time(module_sink, recorded):
    command_4 = module_sink.session(recorded.session_id)["commands"][3]
    head, events = asciicast(module_sink, recorded.session_id, **{"from": command_4["start_time"]})
    assert [e[2] for e in events if e[1] == "m"][0] == "#4 vim notes.txt"
    assert head["timestamp"] >= recorded.spec.start_ns // 10**9


def test_screen_at_the_end_of_a_command(module_sink, recorded):
    screen = module_sink.get(f"/api/sessions/{recorded.session_id}/screen", seq=1)
    assert (screen["columns"], screen["lines"]) == (80, 24) and len(screen["text"]) == 24
    # 31 lines were written to 24 rows: the first ones scrolled away, the cursor is on the last
    assert screen["text"] == [f"dir{i}  file{i}.txt" for i in range(7, 30)] + [""]
    assert screen["cursor"] == {"x": 0, "y": 23, "hidden": False}
    # after vim closed: the shell's screen is back, as in a real terminal (alternate screen)
    after_vim = module_sink.get(f"/api/sessions/{recorded.session_id}/screen", seq=4, cells=1)
    assert (after_vim["columns"], after_vim["lines"]) == (100, 30)
    assert not any("notes.txt\" [New]" in line for line in after_vim["text"])
    assert "héllo wörld" in after_vim["text"] and "$ vim notes.txt" in after_vim["text"]
    blue = [run for line in after_vim["cells"] for run in line if run["text"].startswith("dir")]
    assert blue and all(run["fg"] == "blue" and run["bold"] for run in blue)
    status, _, _ = module_sink.fetch(f"/api/sessions/{recorded.session_id}/screen", seq=42)
    assert status == 404
    status, _, _ = module_sink.fetch(f"/api/sessions/{recorded.session_id}/screen")
    assert status == 400


def replayed(rec, through: int) -> list[str]:
    """The screen after the first `through` records, replayed here by the same emulator."""
    terminal = Terminal(80, 24)
    for r in rec.records[:through]:
        terminal.feed(r.attributes[1].value.string_value, r.body.string_value)
    return terminal.lines()


def test_screens_are_exact_in_any_order_of_asking(module_sink, recorded):
    path = f"/api/sessions/{recorded.session_id}/screen"
    for seq in (4, 5, 1, 5, 3):  # later screens go on from kept ones; earlier ones start over
        screen = module_sink.get(path, seq=seq)
        assert screen["text"] == replayed(recorded, screen["through_record"]), seq


def test_a_record_arriving_late_is_in_the_next_screen(module_sink):
    rec = recorded_session([RecordedCommand("echo one", b"one\r\n"),
                            RecordedCommand("echo two", b"two\r\n")], user="rec-late")
    late = rec.records[2]  # the output of command 1
    assert late.body.string_value == "one\r\n"
    rec.records.remove(late)
    store_recording(module_sink, rec)
    path = f"/api/sessions/{rec.session_id}/screen"
    assert "one" not in module_sink.get(path, seq=2)["text"]
    assert post_logs(module_sink.otlp_http_endpoint,
                     logs_request([late]).SerializeToString()).status == 200
    module_sink.wait_for(lambda: "one" in module_sink.get(path, seq=2)["text"])
    rec.records.insert(2, late)
    assert module_sink.get(path, seq=2)["text"] == replayed(rec, len(rec.records) - 1)


def test_excerpt_is_plain_text_and_bounded(module_sink, recorded):
    path = f"/api/sessions/{recorded.session_id}/excerpt"
    listing = module_sink.get(path, seq=1)
    assert listing["command"] == "ls --color" and not listing["truncated"]
    assert listing["text"].splitlines() == [f"dir{i}  file{i}.txt" for i in range(30)]
    assert "\x1b" not in listing["text"]
    assert module_sink.get(path, seq=2)["text"] == "" and \
        module_sink.get(path, seq=2)["exit_code"] == 1
    log = module_sink.get(path, seq=5, max_lines=50)
    assert log["truncated"] and log["text"].splitlines() == [
        f"line {i:05d} of the log" for i in range(1950, 2000)]


def test_cli_screen_and_replay(module_sink, recorded):
    base = [str(SINK_BIN), "sessions"]
    screen = subprocess.run(base + ["screen", recorded.session_id, "--seq", "3", "--api",
                                    module_sink.api_url], capture_output=True, text=True,
                            timeout=60)
    assert screen.returncode == 0, screen.stderr
    assert "héllo wörld" in screen.stdout.splitlines()
    replay = subprocess.run(base + ["replay", recorded.session_id, "--speed", "50", "--api",
                                    module_sink.api_url], capture_output=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.decode().startswith(shown_text(recorded))


def test_replay_stops_cleanly_on_ctrl_c_and_restores_the_terminal(module_sink, tmp_path):
    slow = recorded_session([RecordedCommand("sleepy", b"tick\r\n", duration_s=30)],
                            user="rec-slow")
    store_recording(module_sink, slow)
    child = pexpect.spawn(str(SINK_BIN), ["sessions", "replay", slow.session_id, "--idle-limit",
                                          "0", "--api", module_sink.api_url],
                          timeout=30, encoding="utf-8", dimensions=(24, 80))
    child.expect_exact("$ sleepy")
    assert not child.getecho(), "typed keys are not echoed into the replay"
    child.sendintr()
    child.expect_exact("replay stopped")
    assert "\x1b[0m\x1b[?25h\x1b[?1049l" in child.before  # attributes, cursor, normal screen
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_logs_over_json_gzip_and_grpc(module_sink):
    for how in ("json", "gzip", "grpc"):
        rec = recorded_session([RecordedCommand(f"echo {how}", f"{how}\r\n".encode())],
                               user=f"rec-{how}")
        assert post(module_sink.otlp_http_endpoint,
                    request_for(rec.spans).SerializeToString()).status == 200
        request = logs_request(rec.records)
        if how == "json":
            reply = post_logs(module_sink.otlp_http_endpoint, to_otlp_json(request),
                              content_type="application/json")
            assert reply.status == 200 and json.loads(reply.body) == {}
        elif how == "gzip":
            reply = post_logs(module_sink.otlp_http_endpoint, request.SerializeToString(),
                              encoding="gzip")
            assert reply.status == 200
            assert logs_service_pb2.ExportLogsServiceResponse.FromString(reply.body) \
                == logs_service_pb2.ExportLogsServiceResponse()
        else:
            with grpc.insecure_channel(f"127.0.0.1:{module_sink.grpc_port}") as channel:
                stub = logs_service_pb2_grpc.LogsServiceStub(channel)
                answer = stub.Export(request, timeout=30)
                assert not answer.HasField("partial_success")
        wait_stored(module_sink, rec)
        _, events = asciicast(module_sink, rec.session_id)
        assert [e[2] for e in events if e[1] == "o"][1] == f"{how}\r\n"


def test_raw_rows_have_the_contrib_shape(module_sink, recorded):
    rows = module_sink.sql(
        "SELECT TraceId, SpanId, ServiceName, ScopeName, ScopeVersion, Body, "
        "LogAttributes['shell.recording.seq'], LogAttributes['shell.recording.event'] "
        f"FROM shellspan.otel_logs FINAL WHERE TraceId = '{recorded.session_id}' "
        "ORDER BY toUInt64(LogAttributes['shell.recording.seq'])")["rows"]
    assert len(rows) == len(recorded.records)
    first = rows[0]
    assert first[0] == recorded.session_id and first[1] == recorded.root_span_id.hex()
    assert first[2:5] == ["shellspan-test", "shellspan", "0.1.0"]
    assert first[5:] == ["80x24", "1", "r"]


def test_records_with_bad_ids_are_rejected_as_partial_success(module_sink):
    rec = recorded_session([RecordedCommand("echo ok", b"ok\r\n")], user="rec-badids")
    broken = record(99, b"\x00" * 16, b"\x01" * 8, time.time_ns(), "o", "orphan")
    short = record(98, rec.spec.trace_id, b"\x01\x02", time.time_ns(), "o", "short span id")
    reply = post_logs(module_sink.otlp_http_endpoint,
                      logs_request(rec.records + [broken, short]).SerializeToString())
    assert reply.status == 200
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(reply.body).partial_success
    assert partial.rejected_log_records == 2 and "log record" in partial.error_message
    reply = post_logs(module_sink.otlp_http_endpoint, to_otlp_json(logs_request([broken])),
                      content_type="application/json")
    assert json.loads(reply.body)["partialSuccess"]["rejectedLogRecords"] == "1"


@pytest.mark.parametrize("body,ctype,status", [
    (b"\xff\xff garbage", "application/x-protobuf", 400),
    (b"{not json", "application/json", 400),
    (b"x", "text/plain", 415),
])
def test_malformed_logs_requests_get_clear_errors(module_sink, body, ctype, status):
    reply = post_logs(module_sink.otlp_http_endpoint, body, content_type=ctype)
    assert reply.status == status


def test_oversized_logs_requests_are_refused_and_the_sink_goes_on(sink_factory):
    sink = sink_factory(extra_args=["--max-body-bytes", "4096"])
    big = recorded_session([RecordedCommand("cat big", b"x" * 20_000)], user="rec-big")
    small = recorded_session([RecordedCommand("echo ok", b"ok\r\n")], user="rec-small")
    body = logs_request(big.records).SerializeToString()
    assert post_logs(sink.otlp_http_endpoint, body).status == 413
    inflates = gzip.compress(b"\0" * 40_000)  # small on the wire, too large once inflated
    assert post_logs(sink.otlp_http_endpoint, inflates,
                     headers={"Content-Encoding": "gzip"}).status == 413
    with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            logs_service_pb2_grpc.LogsServiceStub(channel).Export(logs_request(big.records),
                                                                  timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    store_recording(sink, small)
    assert sink.fetch(f"/api/sessions/{small.session_id}/recording")[0] == 200


def test_redelivered_batches_count_once(module_sink):
    rec = recorded_session(commands()[:3], user="rec-twice")
    store_recording(module_sink, rec)
    body = logs_request(rec.records).SerializeToString()
    half = logs_request(rec.records[: len(rec.records) // 2]).SerializeToString()
    for again in (body, half, body):
        assert post_logs(module_sink.otlp_http_endpoint, again).status == 200
    raw = lambda: int(module_sink.sql(  # noqa: E731
        "SELECT count() FROM shellspan.otel_logs "
        f"WHERE TraceId = '{rec.session_id}'")["rows"][0][0])
    module_sink.wait_for(lambda: raw() >= 3 * len(rec.records) + len(rec.records) // 2)
    assert stored_records(module_sink, rec.session_id) == (len(rec.records), len(rec.records))
    _, events = asciicast(module_sink, rec.session_id)
    assert len([e for e in events if e[1] != "m"]) == len(rec.records)
    assert [e[2] for e in events if e[1] == "m"] == ["#1 ls --color", "#2 false",
                                                     "#3 echo héllo wörld"]


def test_a_session_without_recording_is_404(module_sink):
    rec = recorded_session([RecordedCommand("true", b"")], user="rec-none")
    assert post(module_sink.otlp_http_endpoint,
                request_for(rec.spans).SerializeToString()).status == 200
    module_sink.wait_for(lambda: module_sink.sessions(user="rec-none"))
    status, _, body = module_sink.fetch(f"/api/sessions/{rec.session_id}/recording")
    assert status == 404 and b"no recording" in body
    assert module_sink.fetch("/api/sessions/not-a-session/recording")[0] == 400


# --- auth, and kill -9 ---------------------------------------------------------------------------

def token(sub: str, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": "shellspan", "iat": now, "exp": now + 300, **claims},
                      SECRET, algorithm="HS256")


def test_logs_need_a_token_and_carry_the_verified_identity(tmp_path):
    sink = SinkProcess(tmp_path / "sink", env={"SHELLSPAN_AUTH_SECRET": SECRET,
                                               "SHELLSPAN_AUTH_MODE": "required"})
    sink.read_token = token("reader", scope="sessions:read sessions:sql")
    sink.start()
    try:
        rec = recorded_session([RecordedCommand("id", b"uid=1000(alice)\r\n")], user="alice")
        forged = rec.records[1]
        forged.attributes.append(kv(semconv.ENDUSER_ID, "root"))
        body = logs_request(rec.records).SerializeToString()
        assert post_logs(sink.otlp_http_endpoint, body).status == 401
        bad = {"Authorization": "Bearer " + jwt.encode({"sub": "x"}, "wrong-secret-0123456789abcdef0123456789")}
        assert post_logs(sink.otlp_http_endpoint, body, headers=bad).status == 401
        with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Export(logs_request(rec.records), timeout=30)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        store_recording(sink, rec, headers={"Authorization": f"Bearer {token('alice')}"})
        rows = sink.sql("SELECT DISTINCT LogAttributes['enduser.id'], "
                        "LogAttributes['shell.auth.verified'] FROM shellspan.otel_logs "
                        f"WHERE TraceId = '{rec.session_id}'")["rows"]
        assert rows == [["alice", "true"]]
        assert sink.fetch(f"/api/sessions/{rec.session_id}/recording")[0] == 200
        sink.read_token = token("reader")  # no sessions:read scope
        assert sink.fetch(f"/api/sessions/{rec.session_id}/recording")[0] == 401
    finally:
        sink.stop()


@pytest.mark.slow
def test_kill_9_while_recordings_are_sent_loses_nothing_acknowledged(tmp_path):
    recs = [recorded_session(commands()[:3], user=f"rec-crash{i}") for i in range(24)]
    batches = [logs_request(rec.records[i:i + 10]).SerializeToString()
               for rec in recs for i in range(0, len(rec.records), 10)]
    expected = sum(len(rec.records) for rec in recs)
    sink = SinkProcess(tmp_path / "sink").start()
    for rec in recs:
        assert post(sink.otlp_http_endpoint, request_for(rec.spans).SerializeToString()).status == 200
    ports = {"http": sink.http_port}
    deadline = time.monotonic() + 120
    acked: list[int] = []

    def client(chunk: list[bytes]) -> None:
        for body in chunk:
            acked.append(send_until_acked(lambda: ports["http"], body, deadline, "/v1/logs"))

    threads = [threading.Thread(target=client, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    while len(acked) < len(batches) // 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    sink.kill()
    restarted = SinkProcess(tmp_path / "sink", store=sink.store)
    restarted.http_port = sink.http_port
    restarted.start()
    for t in threads:
        t.join()
    try:
        assert len(acked) == len(batches) and max(acked) > 1
        total = ("SELECT count(), uniqExact(session_id, seq) FROM shellspan.shell_recordings FINAL "
                 "WHERE session_id IN (" + ",".join(f"'{r.session_id}'" for r in recs) + ")")
        restarted.wait_for(lambda: int(restarted.sql(total)["rows"][0][1]) == expected, timeout=60)
        assert [int(v) for v in restarted.sql(total)["rows"][0]] == [expected, expected]
        _, events = asciicast(restarted, recs[-1].session_id)
        assert len([e for e in events if e[1] != "m"]) == len(recs[-1].records)
    finally:
        restarted.stop()
