"""The MCP server, called through the official SDK's own client against the real sink: over
streamable HTTP on the API listener (bearer tokens and scopes as for /api/*) and over stdio
(`shellspan-sink mcp`, answering from the sink's API)."""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request

import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from shellspan import semconv
from shellspan_sink import mcp_server
from shellspan_testing.otlp_builders import (
    Command,
    SessionSpec,
    kv,
    post,
    request_for,
    session_spans,
)
from shellspan_testing.recordings import RecordedCommand, logs_request, post_logs, recorded_session
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess
from shellspan_testing.tokens import mint

SECRET = "mcp-tests-secret-0123456789abcdef"
TOOLS = {"list_sessions", "show_session", "search_commands", "session_stats", "recording_excerpt"}
LONG = "echo " + "x" * (mcp_server.MAX_COMMAND_CHARS + 500)
OPS = SessionSpec(user="alice", host="web-1", commands=[
    Command("kubectl delete pod web-1", cwd="/srv"), Command("psql -c 'DROP TABLE t'", exit_code=1),
    Command("export TOKEN=[REDACTED]"), Command(LONG)])
BUSY = SessionSpec(user="bob", host="db-1", shell_type="zsh",
                   commands=[Command(f"make target-{i}") for i in range(1, 301)])


def token(sub: str, scope: str = "sessions:read") -> str:
    return mint(SECRET, sub, scope)


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("mcp"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "required"})
    proc.read_token = token("assistant")
    proc.start()
    spans = session_spans(OPS) + session_spans(BUSY)
    for span in spans:  # the shell host redacted this one
        if any(a.key == semconv.COMMAND_LINE and "[REDACTED]" in a.value.string_value
               for a in span.attributes):
            span.attributes.append(kv(semconv.COMMAND_REDACTED, True))
    host_token = {"Authorization": f"Bearer {token('shell-host', '')}"}
    rec = recorded_session([RecordedCommand("make build", b"\x1b[32mbuilt\x1b[0m app\r\n"),
                            RecordedCommand("ls", b"app  build\r\n")], user="carol")
    body = request_for(spans + rec.spans).SerializeToString()
    assert post(proc.otlp_http_endpoint, body, headers=host_token).status == 200
    assert post_logs(proc.otlp_http_endpoint, logs_request(rec.records).SerializeToString(),
                     headers=host_token).status == 200
    proc.recorded = rec
    proc.wait_for(lambda: proc.call("/api/commands", params={"limit": 1000})[1]["count"] == 306
                  and proc.call(f"/api/sessions/{rec.session_id}/excerpt",
                                params={"seq": 1})[0] == 200)
    yield proc
    proc.stop()


def http_client(sink: SinkProcess, tok: str | None) -> Client:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return Client(streamable_http_client(sink.api_url + "/mcp",
                                         http_client=httpx2.AsyncClient(headers=headers)))


def stdio_client(sink: SinkProcess, tok: str | None) -> Client:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELLSPAN_")}
    if tok:
        env["SHELLSPAN_READ_TOKEN"] = tok
    return Client(StdioServerParameters(command=str(SINK_BIN), args=["mcp", "--api", sink.api_url],
                                        env=env))


async def calls(client: Client, *requests: tuple[str, dict]) -> list:
    async with client as c:
        listed = await c.list_tools()
        results = [await c.call_tool(name, args) for name, args in requests]
    return [{t.name for t in listed.tools}, *results]


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_the_tools_answer_through_the_sdk_client(sink, transport):
    client = (http_client if transport == "http" else stdio_client)(sink, sink.read_token)
    tools, found, shown, listed, stats = asyncio.run(calls(
        client,
        ("search_commands", {"q": "DELETE POD"}),
        ("show_session", {"session_id": OPS.session_id}),
        ("list_sessions", {"user": "bob"}),
        ("session_stats", {"top": 3})))
    assert tools == TOOLS
    (hit,) = found.structured_content["commands"]
    assert (hit["command"], hit["user"], hit["verified"], hit["host_name"]) == \
        ("kubectl delete pod web-1", "shell-host", True, "web-1")
    assert hit["after"] == {"seq": 2, "command": "psql -c 'DROP TABLE t'"}
    session = shown.structured_content
    assert session["session"]["session_id"] == OPS.session_id and session["commands_total"] == 4
    assert [c["seq"] for c in session["commands"]] == [1, 2, 3, 4]
    assert [s["session_id"] for s in listed.structured_content["sessions"]] == [BUSY.session_id]
    assert stats.structured_content["totals"]["commands"] == 306
    assert len(stats.structured_content["top_commands"]) == 3


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_results_are_bounded_and_redacted_as_in_the_api(sink, transport):
    client = (http_client if transport == "http" else stdio_client)(sink, sink.read_token)
    _, shown, window, hits, too_many = asyncio.run(calls(
        client,
        ("show_session", {"session_id": OPS.session_id}),
        ("show_session", {"session_id": BUSY.session_id, "from_seq": 100, "limit": 50}),
        ("search_commands", {"q": "make target", "limit": 100}),
        ("search_commands", {"q": "make", "limit": 5000})))
    long = shown.structured_content["commands"][3]
    assert long["command_truncated"] is True
    assert len(long["command"]) == mcp_server.MAX_COMMAND_CHARS + 1 and long["command"].endswith("…")
    secret = shown.structured_content["commands"][2]
    api = sink.session(OPS.session_id)["commands"][2]
    assert (secret["command"], secret["redacted"]) == (api["command"], api["redacted"]) == \
        ("export TOKEN=[REDACTED]", True)
    page = window.structured_content
    assert [c["seq"] for c in page["commands"]] == list(range(100, 150))
    assert page["next_from_seq"] == 150 and page["commands_total"] == 300
    assert hits.structured_content["count"] == 100 and hits.structured_content["next_cursor"]
    assert too_many.is_error  # the SDK validates the bound before the tool runs


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_bad_arguments_are_tool_errors(sink, transport):
    client = (http_client if transport == "http" else stdio_client)(sink, sink.read_token)
    _, regex, missing, bad_id, bad_filter = asyncio.run(calls(
        client,
        ("search_commands", {"q": "(", "regex": True}),
        ("show_session", {"session_id": "0" * 32}),
        ("show_session", {"session_id": "' OR '1'='1"}),
        ("list_sessions", {"state": "sideways"})))
    assert regex.is_error and "invalid regular expression" in regex.content[0].text
    assert missing.is_error and "no session" in missing.content[0].text
    assert bad_id.is_error and bad_filter.is_error and "state must be" in bad_filter.content[0].text


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_recording_excerpt_is_what_the_command_printed(sink, transport):
    client = (http_client if transport == "http" else stdio_client)(sink, sink.read_token)
    _, built, listing, missing, unrecorded = asyncio.run(calls(
        client,
        ("recording_excerpt", {"session_id": sink.recorded.session_id, "seq": 1}),
        ("recording_excerpt", {"session_id": sink.recorded.session_id, "seq": 2, "max_chars": 4}),
        ("recording_excerpt", {"session_id": sink.recorded.session_id, "seq": 9}),
        ("recording_excerpt", {"session_id": OPS.session_id, "seq": 1})))
    assert (built.structured_content["command"], built.structured_content["text"]) == \
        ("make build", "built app")  # as the user saw it: the colour codes interpreted
    assert listing.structured_content["text"] == "uild" and listing.structured_content["truncated"]
    assert missing.is_error and "no recording" in missing.content[0].text  # no command 9
    assert unrecorded.structured_content["text"] == ""  # as the API: a command, nothing recorded


@pytest.mark.slow
def test_reads_through_mcp_are_in_the_access_log(sink):
    auditor = token("audrey", "sessions:read sessions:audit")
    asyncio.run(calls(http_client(sink, token("claude-http")),
                      ("show_session", {"session_id": BUSY.session_id})))
    asyncio.run(calls(stdio_client(sink, token("claude-stdio")),
                      ("search_commands", {"q": "delete"})))
    excerpt = {"session_id": sink.recorded.session_id, "seq": 1}
    asyncio.run(calls(http_client(sink, token("claude-http")), ("recording_excerpt", excerpt)))
    asyncio.run(calls(stdio_client(sink, token("claude-stdio")), ("recording_excerpt", excerpt)))

    def recorded():
        events = sink.call("/api/access-log", params={"door": "mcp"}, token=auditor)[1]["events"]
        return {(e["subject"], e["action"]) for e in events} >= {
            ("claude-http", "show"), ("claude-stdio", "search"), ("claude-http", "excerpt"),
            ("claude-stdio", "excerpt")} and events

    events = sink.wait_for(recorded)
    http_show = next(e for e in events if (e["subject"], e["action"]) == ("claude-http", "show"))
    assert http_show["session_ids"] == [BUSY.session_id] and http_show["verified"] is True


def test_http_needs_a_read_token(sink):
    for tok in (None, "garbage", token("x", "sessions:annotate")):
        with pytest.raises(Exception) as err:  # noqa: B017 - the SDK client fails to connect ...
            asyncio.run(calls(http_client(sink, tok)))
        assert err.group_contains(MCPError, match="error response")
        # ... because the sink answered 401, as it does for /api/*:
        request = urllib.request.Request(sink.api_url + "/mcp", data=b"{}", method="POST",
                                         headers={"Authorization": f"Bearer {tok}"} if tok else {})
        with pytest.raises(urllib.error.HTTPError) as http_err:
            urllib.request.urlopen(request, timeout=30)
        assert http_err.value.code == 401
        assert http_err.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_stdio_without_a_token_reports_the_sinks_refusal(sink):
    _, result = asyncio.run(calls(stdio_client(sink, None), ("search_commands", {"q": "x"})))
    assert result.is_error and "401" in result.content[0].text


def test_a_browser_led_in_by_dns_rebinding_is_refused(sink):
    for headers in ({"Host": "evil.example:8678"},
                    {"Origin": "http://evil.example"}):
        request = urllib.request.Request(
            sink.api_url + "/mcp", data=b"{}", method="POST",
            headers={"Authorization": f"Bearer {sink.read_token}", "Content-Type": "application/json",
                     **headers})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 403
