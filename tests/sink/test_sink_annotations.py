"""Annotations through the real sink: the sessions:annotate scope, who added what and when,
append-only history with supersession, tags searchable on sessions and commands, validation."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse

import pytest

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import SINK_BIN, SinkProcess
from shellspan_testing.tokens import mint

SECRET = "annotation-tests-secret-0123456789abcdef"
FIRST = SessionSpec(user="alice", commands=[Command("kubectl delete pod web-1"), Command("ls")])
SECOND = SessionSpec(user="bob", commands=[Command("uptime")])


def token(sub: str, scope: str) -> str:
    return mint(SECRET, sub, scope)


READER = token("reader", "sessions:read")
REVIEWER = token("rita", "sessions:read sessions:annotate")
ANNOTATE_ONLY = token("ann", "sessions:annotate")


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("annotations"),
                       env={"SHELLSPAN_AUTH_SECRET": SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    proc.read_token = READER
    proc.start()
    spans = session_spans(FIRST) + session_spans(SECOND)
    assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    proc.wait_for(lambda: len(proc.sessions()) == 2)
    yield proc
    proc.stop()


def annotate(sink: SinkProcess, session_id: str, body, tok: str | None = REVIEWER):
    return sink.call(f"/api/sessions/{session_id}/annotations", body=body, token=tok)


def test_adding_needs_the_annotate_scope(sink):
    note = {"tags": ["x"]}
    assert annotate(sink, FIRST.session_id, note, READER)[0] == 401
    assert annotate(sink, FIRST.session_id, note, token("rita", "sessions:read sessions:sql"))[0] == 401
    assert sink.call(f"/api/sessions/{FIRST.session_id}/annotations")[1]["annotations"] == []


def test_annotation_needs_read_too_through_the_api(sink):
    # /api/* needs sessions:read; the annotate scope alone does not open it.
    assert annotate(sink, FIRST.session_id, {"tags": ["x"]}, ANNOTATE_ONLY)[0] == 401


def test_who_added_what_and_when_append_only_with_supersession(sink):
    before = time.time()
    status, first = annotate(sink, FIRST.session_id, {
        "tags": ["incident-42", "prod"], "ticket": "OPS-42", "reason": "pod deleted by hand",
        "note": "reviewed with the on-call"})
    assert status == 201, first
    assert (first["author"], first["author_verified"], first["tags"]) == \
        ("rita", True, ["incident-42", "prod"])
    assert len(first["annotation_id"]) == 32 and first["session_id"] == FIRST.session_id
    status, second = annotate(sink, FIRST.session_id, {
        "tags": ["incident-43"], "reviewer": "sam", "supersedes": first["annotation_id"]})
    assert status == 201, second

    status, notes = sink.call(f"/api/sessions/{FIRST.session_id}/annotations")
    assert status == 200 and notes["tags"] == ["incident-43"]
    history = notes["annotations"]
    assert [a["annotation_id"] for a in history] == [first["annotation_id"], second["annotation_id"]]
    assert history[0]["superseded_by"] == second["annotation_id"]  # kept, marked, never edited
    assert history[0]["ticket"] == "OPS-42" and history[0]["tags"] == ["incident-42", "prod"]
    assert history[1]["supersedes"] == first["annotation_id"]
    created = [time.mktime(time.strptime(a["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))
               - time.timezone for a in history]
    assert all(before - 5 <= t <= time.time() + 5 for t in created)

    shown = sink.session(FIRST.session_id)
    assert shown["session"]["tags"] == ["incident-43"]
    assert [a["annotation_id"] for a in shown["annotations"]] == [a["annotation_id"] for a in history]


def test_tags_are_searchable_on_sessions_and_commands(sink):
    status, _ = annotate(sink, SECOND.session_id, {"tags": ["night-shift"]})
    assert status == 201
    assert [s["session_id"] for s in sink.sessions(tag="night-shift")] == [SECOND.session_id]
    assert sink.sessions(tag="incident-42") == []  # superseded
    assert [s["session_id"] for s in sink.sessions(tag="incident-43")] == [FIRST.session_id]
    status, page = sink.call("/api/commands", params={"tag": "incident-43"})
    assert status == 200 and {h["command"] for h in page["commands"]} == \
        {"kubectl delete pod web-1", "ls"}
    assert sink.get("/api/stats", tag="night-shift")["totals"]["sessions"] == 1


@pytest.mark.parametrize("body,error", [
    (b"not json", "not JSON"),
    ([], "JSON object"),
    ({}, "needs a tag"),
    ({"tags": []}, "needs a tag"),
    ({"tags": "has space"}, "no spaces"),
    ({"tags": ["ok", 3]}, "list of strings"),
    ({"tags": [f"t{i}" for i in range(21)]}, "at most 20"),
    ({"tags": ["x" * 65]}, "1 to 64"),
    ({"note": "x" * 4001}, "longer than"),
    ({"note": 5}, "must be a string"),
    ({"ticket": "a\x00b"}, "NUL"),
    ({"author": "mallory", "tags": ["x"]}, "unknown field"),
    ({"supersedes": "not-an-id"}, "annotation_id"),
    ({"supersedes": "0" * 32}, "no annotation"),
    (b"{" + b" " * 70000 + b"}", "exceeds"),
])
def test_bad_annotations_are_400_and_store_nothing(sink, body, error):
    status, answer = annotate(sink, SECOND.session_id, body)
    assert status == 400 and error in answer["error"], answer


def test_unknown_and_malformed_sessions(sink):
    assert annotate(sink, "0" * 32, {"tags": ["x"]})[0] == 404
    assert annotate(sink, urllib.parse.quote("' OR '1'='1", safe=""), {"tags": ["x"]})[0] == 400
    assert annotate(sink, "g" * 32, {"tags": ["x"]})[0] == 400
    assert sink.call(f"/api/sessions/{'0' * 32}/annotations")[0] == 404


def test_an_author_field_in_the_body_cannot_forge_who_added_it(sink):
    status, notes = sink.call(f"/api/sessions/{SECOND.session_id}/annotations")
    assert {a["author"] for a in notes["annotations"]} == {"rita"}


def test_cli_annotate_and_show(sink):
    def cli(*args: str, tok: str = REVIEWER, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(SINK_BIN), *args, "--api", sink.api_url, "--token", tok],
                              capture_output=True, text=True, timeout=60, check=check)

    out = cli("sessions", "annotate", SECOND.session_id, "--tag", "audit", "--tag", "q3",
              "--note", "quarterly review", "--ticket", "SEC-9", "--format", "json").stdout
    stored = json.loads(out)
    assert stored["tags"] == ["audit", "q3"] and stored["author"] == "rita"
    shown = cli("sessions", "show", SECOND.session_id, tok=READER).stdout
    assert "annotations:" in shown and "SEC-9" in shown and "quarterly review" in shown
    assert "audit" in shown.split("attributes:")[0]  # the session's tags in its head
    refused = cli("sessions", "annotate", SECOND.session_id, "--tag", "x", tok=READER, check=False)
    assert refused.returncode != 0 and "sessions:annotate" in refused.stderr
    empty = cli("sessions", "annotate", SECOND.session_id, check=False)
    assert empty.returncode != 0 and "needs a tag" in empty.stderr


def test_with_auth_off_the_author_is_anonymous(sink_factory):
    plain = sink_factory("plain")
    spec = SessionSpec(user="eve", commands=[Command("id")])
    assert post(plain.otlp_http_endpoint, request_for(session_spans(spec)).SerializeToString()).status == 200
    plain.wait_for(lambda: plain.sessions())
    status, stored = plain.call(f"/api/sessions/{spec.session_id}/annotations",
                                body={"tags": ["checked"]})
    assert status == 201 and (stored["author"], stored["author_verified"]) == ("anonymous", False)
