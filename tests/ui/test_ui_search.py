"""Command search in the web UI (headless Chromium), over a real sink: the header's search box,
hits with their context, opening the session at the hit, annotations on the session page."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request

import pytest

from shellspan_testing.browser import CHROMIUM, Browser
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.recordings import RecordedCommand, logs_request, post_logs, recorded_session
from shellspan_testing.sinkproc import SinkProcess

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="chromium is not installed (apt-get install -y chromium chromium-driver)")

NOW = time.time_ns()
MARKUP = "echo '<img src=x onerror=\"document.title=1\">' | kubectl apply -f -"
BUSY = SessionSpec(user="alice", host="web-1", shell_type="bash", start_ns=NOW - 3600 * 10**9,
                   commands=[Command(f"echo step {i}") for i in range(1, 60)]
                   + [Command("kubectl delete pod web-7", cwd="/srv/k8s"),
                      Command("kubectl get pods", cwd="/srv/k8s"),
                      Command("rm -rf /tmp/build", exit_code=1, cwd="/srv/k8s")])
RECORDED = recorded_session([RecordedCommand(f"make stage-{i}", f"stage {i} done\r\n".encode(),
                                             duration_s=0.5) for i in range(1, 5)],
                            user="erin", host="build-1", start_ns=NOW - 7200 * 10**9)
OTHER = SessionSpec(user="bob", host="db-1", shell_type="zsh", start_ns=NOW - 600 * 10**9,
                    commands=[Command("psql -c 'DROP TABLE staging'"), Command(MARKUP)])


@pytest.fixture(scope="module")
def sink(tmp_path_factory, request):
    proc = SinkProcess(tmp_path_factory.mktemp("ui-search") / "sink").start()
    request.addfinalizer(proc.stop)
    spans = [s for spec in (BUSY, OTHER) for s in session_spans(spec)]
    assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    assert post(proc.otlp_http_endpoint, request_for(RECORDED.spans).SerializeToString()).status == 200
    assert post_logs(proc.otlp_http_endpoint,
                     logs_request(RECORDED.records).SerializeToString()).status == 200
    total = len(BUSY.commands) + len(OTHER.commands) + len(RECORDED.command_span_ids)
    proc.wait_for(lambda: proc.get("/api/commands", limit=1000)["count"] == total)
    body = json.dumps({"tags": ["incident-7"], "ticket": "OPS-7", "note": "pod deleted by hand"})
    req = urllib.request.Request(f"{proc.api_url}/api/sessions/{BUSY.session_id}/annotations",
                                 data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
    yield proc


def hits(browser: Browser) -> list[dict]:
    return browser.js("""[...document.querySelectorAll('[data-testid=hit]')].map(h => ({
        session: h.dataset.sessionId, seq: Number(h.dataset.seq),
        command: h.querySelector('[data-testid=hit-command] .cmd').textContent,
        marked: [...h.querySelectorAll('[data-testid=hit-command] mark')].map(m => m.textContent),
        before: h.querySelector('[data-testid=hit-before] .cmd')?.textContent ?? null,
        after: h.querySelector('[data-testid=hit-after] .cmd')?.textContent ?? null}))""")


def test_header_search_box_finds_commands_with_their_context(sink, browser):
    browser.goto(sink.api_url + "/")
    browser.js("document.getElementById('command-search-input').value = 'KUBECTL'")
    browser.js("document.getElementById('command-search').requestSubmit()")
    browser.wait("location.hash === '#/commands?q=KUBECTL' && document.body.dataset.loaded === '1'"
                 " && document.body.dataset.view === 'commands'")
    found = hits(browser)
    assert [h["command"] for h in found] == [MARKUP, "kubectl get pods", "kubectl delete pod web-7"]
    delete = found[2]
    assert (delete["session"], delete["seq"]) == (BUSY.session_id, 60)
    assert delete["marked"] == ["kubectl"] and delete["before"] == "echo step 59"
    assert delete["after"] == "kubectl get pods"
    assert browser.js("document.querySelectorAll('#app img').length") == 0  # text, never markup
    assert browser.js("document.title") == "shellspan"
    assert browser.js("document.querySelector('[data-nav=commands]').classList.contains('current')")
    browser.screenshot("command-search")
    assert browser.errors == []


def open_only_hit(sink: SinkProcess, browser: Browser, q: str) -> None:
    """Search for `q`, which has one hit, and click it; the focus events are kept in
    `window.focused`."""
    browser.goto(sink.api_url + "/#/commands?" + urllib.parse.urlencode({"q": q}))
    browser.wait("document.querySelectorAll('[data-testid=hit]').length === 1")
    browser.js("""window.focused = []; document.addEventListener('shellspan:focus-command',
        (ev) => window.focused.push(ev.detail))""")
    browser.click("[data-testid=hit-link]")
    browser.wait_loaded("session")


def test_a_hit_opens_the_session_at_that_command(sink, browser):
    open_only_hit(sink, browser, "delete pod")
    assert browser.js("location.hash") == f"#/sessions/{BUSY.session_id}?seq=60"
    row = browser.wait("""(() => { const r = document.querySelector('[data-testid=command-row].focus');
        if (!r) return null; const box = r.getBoundingClientRect();
        return {seq: r.dataset.seq, text: r.querySelector('[data-testid=command-text]').textContent,
                visible: box.top >= 0 && box.bottom <= window.innerHeight}; })()""")
    assert row == {"seq": "60", "text": "kubectl delete pod web-7", "visible": True}
    assert browser.js("document.querySelectorAll('[data-testid=command-row].focus').length") == 1
    focused = browser.js("window.focused")
    assert len(focused) == 1 and focused[0]["seq"] == 60
    assert focused[0]["sessionId"] == BUSY.session_id and focused[0]["startTime"]
    browser.screenshot("session-at-command")
    assert browser.errors == []


def test_a_hit_in_a_recorded_session_starts_the_player_at_that_command(sink, browser):
    open_only_hit(sink, browser, "stage-3")
    assert browser.js("location.hash") == f"#/sessions/{RECORDED.session_id}?seq=3"
    browser.wait("document.querySelector('[data-testid=player]').dataset.seekedTo === '3'")
    assert browser.js("document.querySelector('[data-testid=command-row].focus').dataset.seq") == "3"
    assert browser.js("document.querySelector('[data-testid=player-command]').textContent") \
        == "#3 make stage-3"
    browser.screenshot("search-hit-in-the-player")
    assert browser.errors == []


def test_regex_and_filters_from_the_form(sink, browser):
    browser.goto(sink.api_url + "/#/commands")
    browser.js("document.querySelector('[data-testid=search-q]').value = '^(rm|psql) '")
    browser.js("document.querySelector('[data-testid=search-regex]').checked = true")
    browser.js("document.querySelector('[data-testid=search-exit]').value = 'failed'")
    browser.click("[data-testid=search-form] button[type=submit]")
    # the page that answers has the one hit (the page before had every command)
    browser.wait("location.hash.includes('regex=1') && document.body.dataset.loaded === '1' && "
                 "document.querySelectorAll('[data-testid=hit]').length === 1")
    assert [h["command"] for h in hits(browser)] == ["rm -rf /tmp/build"]
    browser.goto(sink.api_url + "/#/commands?q=(unclosed&regex=1")
    assert "invalid regular expression" in browser.js("document.getElementById('error').innerText")


def test_paging_through_hits(sink, browser):
    browser.goto(sink.api_url + "/#/commands?q=echo%20step")
    first = [h["seq"] for h in hits(browser)]
    assert first == list(range(59, 9, -1))  # 50 newest of 59
    browser.click("[data-testid=older]")
    browser.wait("location.hash.includes('cursor=') && document.body.dataset.loaded === '1' && "
                 "document.querySelector('[data-testid=hit]').dataset.seq === '9'")
    assert [h["seq"] for h in hits(browser)] == list(range(9, 0, -1))
    assert browser.js("document.querySelector('[data-testid=older]') === null")


def test_session_page_shows_tags_and_annotations(sink, browser):
    browser.goto(sink.api_url + f"/#/sessions/{BUSY.session_id}")
    assert browser.js("[...document.querySelectorAll('[data-testid=tag]')].map(t => t.textContent)") \
        == ["incident-7"]
    note = browser.js("document.querySelector('[data-testid=annotation]').innerText")
    assert "anonymous" in note and "OPS-7" in note and "pod deleted by hand" in note
    browser.click("[data-testid=tag]")
    browser.wait("location.hash === '#/sessions?tag=incident-7' && "
                 "document.querySelectorAll('[data-testid=session-row]').length === 1")
    assert browser.js("document.querySelector('[data-testid=session-row]').dataset.sessionId") \
        == BUSY.session_id


def test_what_the_ui_read_is_in_the_access_log_as_the_ui(sink, browser):
    browser.goto(sink.api_url + f"/#/sessions/{OTHER.session_id}")

    def ui_show():
        events = sink.get("/api/access-log", door="ui", action="show", session=OTHER.session_id)
        return events["events"]

    events = sink.wait_for(ui_show)
    assert events[0]["subject"] == "anonymous" and events[0]["client_address"] == "127.0.0.1"
    searches = sink.get("/api/access-log", door="ui", action="search")["events"]
    assert any(e["detail"].get("q") == "KUBECTL" for e in searches)
