"""The session page's terminal player (xterm.js) in headless Chromium, over a sink holding a
recording sent as the shell side sends it: markers per command, seeking from the command table
and the timeline, the screen at a command's end, and the page's CSP."""

from __future__ import annotations

import json
import os

import pytest

from shellspan_testing.browser import CHROMIUM, Browser
from shellspan_testing.otlp_builders import post, request_for
from shellspan_testing.recordings import RecordedCommand, logs_request, post_logs, recorded_session
from shellspan_testing.sinkproc import REPO, SinkProcess

XTERM = REPO / "sink/src/shellspan_sink/ui/vendor/node_modules/@xterm/xterm/lib/xterm.mjs"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.skipif(not XTERM.exists(),
                       reason="xterm.js is not installed: run `make setup` (needs npm)"),
]

ROWS = "document.querySelector('[data-testid=player] .xterm-rows')"


def outputs(n: int) -> bytes:
    return "".join(f"\x1b[1;3{n}moutput-of-command-{n} line {i}\x1b[0m\r\n"
                   for i in range(3)).encode()


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    proc = SinkProcess(tmp_path_factory.mktemp("replay-ui")).start()
    try:
        # Commands long enough that, played from the start, command 3 would be far away.
        rec = recorded_session([RecordedCommand(f"step {n}", outputs(n), duration_s=40)
                                for n in range(1, 6)], user="replay-ui")
        bare = recorded_session([RecordedCommand("true", b"")], user="replay-ui-bare")
        spans = rec.spans + bare.spans
        assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
        assert post_logs(proc.otlp_http_endpoint,
                         logs_request(rec.records).SerializeToString()).status == 200
        proc.wait_for(lambda: proc.fetch(f"/api/sessions/{rec.session_id}/recording")[0] == 200
                      and len(proc.session(rec.session_id)["commands"]) == 5
                      and proc.sessions(user="replay-ui-bare"), timeout=60)
        proc.wait_for(lambda: proc.fetch(f"/api/sessions/{rec.session_id}/recording")[2]
                      .count(b'"o"') == len(rec.records) - 1)
        proc.recording, proc.bare = rec, bare
        yield proc
    finally:
        proc.stop()


def open_session(browser: Browser, sink: SinkProcess, session_id: str) -> None:
    browser.goto(f"{sink.api_url}/#/sessions")  # a fresh page each time (the same URL would not be)
    browser.goto(f"{sink.api_url}/#/sessions/{session_id}")
    browser.wait_loaded("session")


def test_the_player_plays_and_marks_every_command(sink, browser):
    open_session(browser, sink, sink.recording.session_id)
    browser.wait("document.querySelector('[data-testid=player]').dataset.ready === '1'")
    browser.wait(f"{ROWS} && {ROWS}.innerText.includes('$ step 1')")
    browser.wait("document.querySelector('[data-testid=player]').dataset.state === 'playing'")
    markers = browser.wait("""(() => { const m = [...document.querySelectorAll(
        '[data-testid=player-marker]')].map(t => [Number(t.dataset.seq), t.title]);
        return m.length === 5 && m; })()""")
    assert [seq for seq, _ in markers] == [1, 2, 3, 4, 5]
    assert all(title.endswith(f"#{seq} step {seq}") for seq, title in markers)
    browser.screenshot("player-start")
    assert browser.errors == []


def seek_by_click(browser: Browser, sink: SinkProcess, selector: str, seq: int) -> None:
    """Open the recorded session, wait for its player, click `selector`: the player seeks."""
    open_session(browser, sink, sink.recording.session_id)
    browser.wait("document.querySelector('[data-testid=player]').dataset.ready === '1'")
    browser.click(selector)
    browser.wait(f"document.querySelector('[data-testid=player]').dataset.seekedTo === '{seq}'")


def test_clicking_command_3_seeks_the_player_to_its_output(sink, browser):
    seek_by_click(browser, sink, "[data-testid=command-row][data-seq='3'] [data-testid=command-text]", 3)
    text = browser.wait(f"""(() => {{ const t = {ROWS}.innerText;
        return t.includes('output-of-command-3 line 2') && t; }})()""", timeout=30)
    assert "output-of-command-4" not in text, "the player went to command 3, not past it"
    assert "output-of-command-2 line 2" in text, "what came before is on the screen, as it was"
    assert browser.js("document.querySelector('[data-testid=player-command]').textContent") \
        == "#3 step 3"
    # the output is drawn by the terminal emulator in its colours (SGR 1;33: bold yellow, which
    # xterm.js draws in the bright yellow of its palette, colour 11)
    styled = browser.js(f"""[...{ROWS}.querySelectorAll('span')].filter(s =>
        s.textContent.includes('output-of-command-3')).map(s => s.className).join(' ')""")
    assert "xterm-bold" in styled and "xterm-fg-11" in styled
    browser.screenshot("player-seek-command-3")
    assert browser.errors == []


def test_clicking_a_timeline_bar_seeks_too(sink, browser):
    seek_by_click(browser, sink, "[data-testid=waterfall-row][data-seq='5'] rect:not(.bg)", 5)
    browser.wait(f"{ROWS}.innerText.includes('output-of-command-5 line 0')", timeout=30)
    assert browser.errors == []


def test_screen_at_the_end_of_a_command(sink, browser):
    open_session(browser, sink, sink.recording.session_id)
    browser.click("[data-testid=command-row][data-seq='3'] [data-testid=screen-button]")
    text = browser.wait("""(() => { const c = document.querySelector('[data-testid=screen-card]');
        return c && !c.hidden && c.dataset.seq === '3' &&
               c.querySelector('[data-testid=screen-text]').innerText; })()""")
    lines = text.rstrip("\n").splitlines()
    assert lines[-3:] == [f"output-of-command-3 line {i}" for i in range(3)]
    assert "$ step 3" in lines and "output-of-command-4 line 0" not in text
    third = browser.js("[...document.querySelectorAll('[data-testid=screen-text] span')].filter("
                       "s => s.textContent.includes('output-of-command-3')).map(s => s.className)")
    assert third == ["fg-brown bold"] * 3  # SGR 1;33, in pyte's colour names
    browser.screenshot("screen-after-command-3")
    assert browser.errors == []


def test_a_session_without_recording_says_so(sink, browser):
    open_session(browser, sink, sink.bare.session_id)
    browser.wait("!!document.querySelector('[data-testid=no-recording]')")
    assert browser.js("document.querySelector('[data-testid=player]').dataset.state") == "none"
    assert browser.errors == []


def test_csp_stays_strict_for_scripts(sink):
    import urllib.request

    with urllib.request.urlopen(sink.api_url + "/") as resp:
        policy = resp.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"] and directives["object-src"] == ["'none'"]
    module = json.loads(json.dumps(str(XTERM)))
    assert module.endswith("xterm.mjs")
