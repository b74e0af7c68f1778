"""The web UI in headless Chromium (shellspan_testing.browser), over a sink holding real
recorded sessions. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from shellspan.auth import login_name
from shellspan_testing.browser import CHROMIUM
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.python_shell_helpers import tagged
from shellspan_testing.sinkproc import SinkProcess

SHELLSPAN = str(Path(sys.executable).with_name("shellspan"))
HOUR_NS = 3600 * 10**9

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="chromium is not installed (apt-get install -y chromium chromium-driver)")


def record_python_session(sink: SinkProcess, tmp: Path, tag: str, lines: list[str],
                          exit_code: int = 0) -> None:
    """A real `shellspan python` session fed through its standard input; its user name is the
    uid's, so its service name (``tag``) tells it apart."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "SHELLSPAN_", "TRACE", "BAGGAGE", "PYTHONSTARTUP"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint, OTEL_SERVICE_NAME=tag,
               SHELLSPAN_BROKER_SOCKET="off", SHELLSPAN_SPOOL_DIR=str(tmp / f"spool-{tag}"),
               HOME=str(tmp))
    done = subprocess.run([SHELLSPAN, "python", "-q"], input="\n".join(lines) + "\n", env=env,
                          cwd=tmp, capture_output=True, text=True, timeout=60)
    assert done.returncode == exit_code, done.stderr


REAL_LINES = ["x = 40 + 2", "1 / 0", "import os", "os.chdir('/tmp')", "print(x)",
              "raise SystemExit(3)"]


@pytest.fixture(scope="module")
def sink(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("ui")
    proc = SinkProcess(tmp / "sink", extra_args=["--abandon-after", "3600"]).start()
    request.addfinalizer(proc.stop)  # also when the set-up below fails
    tag = "ui" + uuid.uuid4().hex[:8]
    record_python_session(proc, tmp, tag, REAL_LINES, exit_code=3)
    record_python_session(proc, tmp, "ui-second", ["sum(range(10))", "undefined_name"])
    now = time.time_ns()
    specs = [
        SessionSpec(user="alice", host="web-1", shell_type="bash", duration_s=620,
                    start_ns=now - 26 * HOUR_NS,
                    commands=[Command("cd /srv/app", cwd="/home/alice"),
                              Command("git pull", duration_s=2.5, cwd="/srv/app"),
                              Command("make test", exit_code=2, duration_s=40, cwd="/srv/app"),
                              Command("sudo systemctl restart app", duration_s=1.2, cwd="/srv/app")]),
        SessionSpec(user="bob", host="db-1", shell_type="zsh", duration_s=5400,
                    start_ns=now - 50 * HOUR_NS,
                    commands=[Command("psql -c 'select 1'", duration_s=0.3),
                              Command("pg_dump shop", exit_code=1, duration_s=12)]),
        SessionSpec(user="carol", host="web-1", shell_type="bash", ended=False,
                    start_ns=now - 20 * 10**9, commands=[Command("tail -f /var/log/syslog")]),
        SessionSpec(user="dave", host="billing-1", shell_type="billing-admin",
                    component="billing", ended=False, start_ns=now - 5 * 10**9,
                    commands=[Command("refund 42", exit_code=2)]),
    ]
    spans = [span for spec in specs for span in session_spans(spec)]
    assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    user = login_name()  # both real sessions': a Python shell's user name comes from its uid
    proc.wait_for(lambda: len(proc.sessions()) == 6 and len(proc.sessions(user=user)) == 2
                  and all(s["state"] == "ended" for s in proc.sessions(user=user)))
    proc.real_user = user
    proc.real_session = tagged(proc, tag)[0]["session_id"]
    yield proc


def test_sessions_list_shows_the_recorded_sessions(sink, browser):
    browser.goto(sink.api_url + "/")
    browser.wait("document.querySelectorAll('[data-testid=session-row]').length === 6")
    rows = browser.js("""[...document.querySelectorAll('[data-testid=session-row]')].map(r =>
        ({id: r.dataset.sessionId, state: r.dataset.state, text: r.innerText}))""")
    listed = {r["id"] for r in rows}
    assert listed == {s["session_id"] for s in sink.sessions()}
    assert {r["state"] for r in rows if "carol" in r["text"] or "dave" in r["text"]} == {"active"}
    assert any(sink.real_user in r["text"] and "python" in r["text"] for r in rows)
    assert browser.js("document.querySelectorAll('.badge.active').length") == 2
    assert "live" in browser.js("document.getElementById('live').textContent")
    browser.screenshot("sessions-list")
    assert browser.errors == []


def test_filters_are_deep_links(sink, browser):
    browser.goto(sink.api_url + "/#/sessions?host=web-1")
    rows = browser.wait("""(() => { const r = [...document.querySelectorAll(
        '[data-testid=session-row]')]; return r.length === 2 && r.map(x => x.innerText); })()""")
    assert all("web-1" in r for r in rows)
    browser.js("document.querySelector('[data-testid=filter-user]').value = 'carol'")
    browser.click("[data-testid=filters] button[type=submit]")
    browser.wait("location.hash.includes('user=carol') && document.querySelectorAll("
                 "'[data-testid=session-row]').length === 1")
    assert browser.js("location.hash") == "#/sessions?user=carol&host=web-1"
    assert browser.errors == []


def test_paging_with_a_cursor(sink, browser):
    browser.goto(sink.api_url + "/#/sessions?limit=25")
    first = browser.js("[...document.querySelectorAll('[data-testid=session-row]')]"
                       ".map(r => r.dataset.sessionId)")
    page = sink.get("/api/sessions", limit=4)
    assert len(page["sessions"]) == 4 and page["next_cursor"]
    rest = sink.get("/api/sessions", limit=4, cursor=page["next_cursor"])
    assert rest["next_cursor"] is None
    assert [s["session_id"] for s in page["sessions"] + rest["sessions"]] == first


def test_clicking_a_session_opens_its_timeline(sink, browser):
    browser.goto(sink.api_url + f"/#/sessions?user={sink.real_user}")
    browser.wait("document.querySelectorAll('[data-testid=session-row]').length === 2")
    session_id = sink.real_session
    # a plain cell: the row is the link
    browser.click(f"[data-testid=session-row][data-session-id='{session_id}'] td:nth-child(7)")
    browser.wait_loaded("session")
    assert browser.js("location.hash") == f"#/sessions/{session_id}"
    assert browser.js("document.querySelector('[data-testid=session-id]').textContent") == session_id
    commands = browser.js("""[...document.querySelectorAll('[data-testid=command-row]')].map(r =>
        [r.querySelector('[data-testid=command-text]').textContent,
         r.querySelector('[data-testid=exit-code]')?.textContent])""")
    assert commands == [["x = 40 + 2", "0"], ["1 / 0", "1"], ["import os", "0"],
                        ["os.chdir('/tmp')", "0"], ["print(x)", "0"], ["raise SystemExit(3)", "3"]]
    bars = browser.js("""[...document.querySelectorAll('[data-testid=waterfall-row]')].map(g =>
        [Number(g.dataset.seq), g.dataset.exit, g.querySelector('rect:not(.bg)').getAttribute('class')])""")
    assert bars == [[1, "0", "ok"], [2, "1", "fail"], [3, "0", "ok"], [4, "0", "ok"],
                    [5, "0", "ok"], [6, "3", "fail"]]
    cwd_marks = browser.js("[...document.querySelectorAll('[data-testid=cwd-change]')]"
                           ".map(t => t.textContent)")
    assert cwd_marks and cwd_marks[-1] == "cd → /tmp"
    meta = browser.js("document.querySelector('[data-testid=session-meta]').innerText")
    assert "python" in meta and sink.real_user in meta and "exit, code 3" in meta
    browser.screenshot("session-timeline")
    assert browser.errors == []


def test_waterfall_places_bars_by_time(sink, browser):
    alice = sink.sessions(user="alice")[0]["session_id"]
    browser.goto(sink.api_url + f"/#/sessions/{alice}")
    bars = browser.wait("""(() => { const b = [...document.querySelectorAll(
        '[data-testid=waterfall-row] rect:not(.bg)')].map(r => [Number(r.getAttribute('x')),
        Number(r.getAttribute('width')), r.getAttribute('class')]); return b.length === 4 && b; })()""")
    xs = [b[0] for b in bars]
    assert xs == sorted(xs) and xs[3] > xs[2] + bars[2][1] - 1  # each starts after the last ended
    assert bars[2][1] > 10 * bars[1][1]  # `make test` (40 s) is far longer than `git pull` (2.5 s)
    assert [b[2] for b in bars] == ["ok", "ok", "fail", "ok"]
    marks = browser.js("[...document.querySelectorAll('[data-testid=cwd-change]')]"
                       ".map(t => t.textContent)")
    assert marks == ["cwd /home/alice", "cd → /srv/app"]
    browser.screenshot("session-waterfall-bash")
    assert browser.errors == []


def test_analytics_renders_charts_from_the_data(sink, browser):
    browser.goto(sink.api_url + "/#/analytics")
    assert browser.js("document.querySelector('[data-testid=total-sessions] .v').textContent") == "6"
    heat = browser.js("[...document.querySelectorAll('[data-testid=heatmap] rect[data-sessions]')]"
                      ".map(r => Number(r.dataset.sessions))")
    assert len(heat) == 7 * 24 and sum(heat) == 6
    histo = browser.js("[...document.querySelectorAll('[data-testid=duration-histogram] rect.bar')]"
                       ".map(r => [r.dataset.label, Number(r.dataset.value)])")
    assert sum(v for _, v in histo) == 6 and dict(histo)["1-2h"] == 1  # bob's 90-minute session
    top = browser.js("[...document.querySelectorAll('[data-testid=top-commands] g.row')]"
                     ".map(g => [g.dataset.key, g.querySelector('text.value').textContent])")
    expected = sink.get("/api/stats", top=10)["top_commands"]
    assert [k for k, _ in top] == [c["command_name"] for c in expected] and len(top) == 10
    assert [t for _, t in top] == [
        f"{c['runs']} run{'s' * (c['runs'] != 1)} · {round(c['failure_rate'] * 100)}% failed"
        for c in expected]
    hosts = browser.js("[...document.querySelectorAll('[data-testid=host-now]')]"
                       ".map(r => [r.dataset.host, r.innerText])")
    assert sorted(h for h, _ in hosts) == ["billing-1", "web-1"]
    assert "carol" in dict(hosts)["web-1"] and "dave" in dict(hosts)["billing-1"]
    by_user = browser.js("[...document.querySelectorAll('[data-testid=fail-by-user] g.row')]"
                         ".map(g => [g.dataset.key, g.querySelector('text.value').textContent])")
    assert dict(by_user)["dave"].startswith("100%") and dict(by_user)["alice"].startswith("25%")
    browser.screenshot("analytics")
    assert browser.errors == []


def test_analytics_filters_are_deep_links(sink, browser):
    browser.goto(sink.api_url + "/#/analytics?host=web-1")
    assert browser.js("document.querySelector('[data-testid=total-sessions] .v').textContent") == "2"
    assert browser.js("document.querySelector('[data-testid=filter-host]').value") == "web-1"


def test_unknown_session_and_bad_filter_are_explained(sink, browser):
    browser.goto(sink.api_url + "/#/sessions/" + "0" * 32)
    assert "Session not found" in browser.js("document.getElementById('app').innerText")
    browser.goto(sink.api_url + "/#/sessions?since=yesterday")
    assert "cannot read time" in browser.js("document.getElementById('error').innerText")


def test_command_text_is_never_markup(sink, browser, tmp_path):
    payload = "<img src=x onerror=\"document.title='pwned'\">"
    spec = SessionSpec(user="mallory", host="web-9", commands=[Command(payload)])
    assert post(sink.otlp_http_endpoint,
                request_for(session_spans(spec)).SerializeToString()).status == 200
    sink.wait_for(lambda: sink.sessions(user="mallory"))
    browser.goto(sink.api_url + f"/#/sessions/{spec.session_id}")
    assert browser.js("document.querySelector('[data-testid=command-text]').textContent") == payload
    assert browser.js("document.querySelectorAll('#app img').length") == 0
    assert browser.js("document.title") == "shellspan"


def test_identity_first_claims_flagged_and_nested_sessions_linked(browser, tmp_path):
    """A sink with auth on: the list and the session show the verified identity first, a
    claimed user name that differs is flagged, an unverified session says so, and a nested
    session links its parent (with the command that started it) and back."""
    from shellspan import semconv
    from shellspan_testing.auth_helpers import SECRET, bearer, send, token
    from shellspan_testing.otlp_builders import kv

    sink = SinkProcess(tmp_path / "auth-sink", env={"SHELLSPAN_AUTH_SECRET": SECRET,
                                                   "SHELLSPAN_AUTH_MODE": "optional"}).start()
    try:
        parent = SessionSpec(user="root", commands=[Command("id"), Command("su - bob")])
        child = SessionSpec(user="bob", start_ns=parent.start_ns + 10**9, commands=[Command("ls")])
        anonymous = SessionSpec(user="anon-ui", commands=[Command("uptime")])
        parent_spans, child_spans = session_spans(parent), session_spans(child)
        child_spans[0].attributes.extend([kv(semconv.PARENT_SESSION_ID, parent.session_id),
                                          kv(semconv.PARENT_SPAN_ID, parent_spans[2].span_id.hex())])
        assert send(sink, parent, bearer(token("alice")), parent_spans).status == 200
        assert send(sink, child, bearer(token("bob")), child_spans).status == 200
        assert send(sink, anonymous).status == 200
        sink.read_token = token("reader", scope="sessions:read")
        sink.wait_for(lambda: len(sink.sessions()) == 3)

        browser.goto(sink.api_url + "/")
        browser.js(f"localStorage.setItem('shellspan.token', {json.dumps(sink.read_token)})")
        browser.goto(sink.api_url + "/#/sessions")
        browser.wait("document.querySelectorAll('[data-testid=session-row]').length === 3")
        users = browser.js("""Object.fromEntries([...document.querySelectorAll(
            '[data-testid=session-row]')].map(r => [r.dataset.sessionId,
            r.querySelector('[data-testid=session-user]').innerText]))""")
        assert users[parent.session_id].startswith("alice") and "claims root" in users[parent.session_id]
        assert "claims" not in users[child.session_id] and users[child.session_id].startswith("bob")
        assert "unverified" in users[anonymous.session_id]

        browser.goto(sink.api_url + f"/#/sessions/{child.session_id}")
        browser.wait_loaded("session")
        meta = browser.js("document.querySelector('[data-testid=session-meta]').innerText")
        assert "bob" in meta and "verified" in meta and "su - bob" in meta
        browser.click("[data-testid=parent-link]")
        browser.wait(f"location.hash === '#/sessions/{parent.session_id}' && "
                     "!!document.querySelector('[data-testid=child-link]')")
        assert browser.js("document.querySelector('[data-testid=claimed-mismatch]').innerText") \
            == "claims root"
        assert child.session_id.startswith(
            browser.js("document.querySelector('[data-testid=child-link]').innerText"))
        browser.screenshot("session-identity")
        assert browser.errors == []
    finally:
        browser.js("localStorage.removeItem('shellspan.token')")
        sink.stop()


def test_assets_are_served_by_the_sink(sink):
    with urllib.request.urlopen(sink.api_url + "/", timeout=10) as resp:
        html = resp.read().decode()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "/ui/app.js" in html and "http" not in html.replace("http-equiv", "")
    for asset in ("app.js", "charts.js", "style.css"):
        with urllib.request.urlopen(f"{sink.api_url}/ui/{asset}", timeout=10) as resp:
            body = resp.read().decode()
            assert resp.status == 200 and "://" not in body.replace("http://www.w3.org/2000/svg", "")


BIG = 100_000


@pytest.fixture(scope="module")
def big_sink(tmp_path_factory, request):
    """A store holding 100,000 sessions (start and end spans; every tenth with a command)."""
    proc = SinkProcess(tmp_path_factory.mktemp("ui-big") / "sink").start()
    request.addfinalizer(proc.stop)  # also when the set-up below fails
    now = time.time_ns()
    users, hosts = [f"user{i:03d}" for i in range(250)], [f"host-{i:02d}" for i in range(40)]
    batch: list = []
    for i in range(BIG):
        spec = SessionSpec(user=users[i % len(users)], host=hosts[i % len(hosts)],
                           shell_type=("bash", "zsh", "python")[i % 3],
                           start_ns=now - (i + 10) * 37 * 10**9, duration_s=(i % 500) * 7.3,
                           ended=i % 1000 != 0,
                           commands=[Command("make deploy", exit_code=i % 7 == 0)] if i % 10 == 0 else [])
        batch.extend(session_spans(spec))
        if len(batch) >= 40_000 or i == BIG - 1:
            reply = post(proc.otlp_http_endpoint, request_for(batch).SerializeToString())
            assert reply.status == 200, reply.body
            batch = []
    proc.wait_for(lambda: proc.get("/api/stats")["totals"]["sessions"] == BIG, timeout=120)
    yield proc


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def test_list_stays_responsive_with_100k_sessions(big_sink, browser):
    page, first_s = timed(lambda: big_sink.get("/api/sessions", limit=50))
    assert len(page["sessions"]) == 50 and page["next_cursor"]
    cursor = page["next_cursor"]
    for _ in range(20):  # twenty pages deep
        deeper, deep_s = timed(lambda c=cursor: big_sink.get("/api/sessions", limit=50, cursor=c))
        cursor = deeper["next_cursor"]
    assert deeper["sessions"][0]["start_time"] < page["sessions"][-1]["start_time"]
    hosts, hosts_s = timed(lambda: big_sink.get("/api/hosts-now"))
    assert sum(h["sessions"] for h in hosts["hosts"]) == 0  # the open ones are hours old
    print(f"\n100k sessions: first page {first_s:.2f}s, page 21 {deep_s:.2f}s, "
          f"hosts-now {hosts_s:.2f}s")
    assert first_s < 3 and deep_s < 3 and hosts_s < 3

    t0 = time.perf_counter()
    browser.goto(big_sink.api_url + "/#/sessions")
    load_s = time.perf_counter() - t0
    assert browser.js("document.querySelectorAll('[data-testid=session-row]').length") == 50
    # The page fetched one page of rows, not the table.
    sizes = browser.js("performance.getEntriesByType('resource').filter(e => "
                       "e.name.includes('/api/')).map(e => e.transferSize)")
    assert sizes and max(sizes) < 200_000
    browser.click("[data-testid=older]")
    browser.wait("location.hash.includes('cursor=') && document.body.dataset.loaded === '1' && "
                 "document.querySelector('.pager').innerText.includes('sessions 51–100')")
    second = browser.js("[...document.querySelectorAll('[data-testid=session-row]')]"
                        ".map(r => r.dataset.sessionId)")
    assert second == [s["session_id"] for s in big_sink.get(
        "/api/sessions", limit=50, cursor=page["next_cursor"])["sessions"]]
    browser.screenshot("sessions-list-100k")
    print(f"list page in the browser: {load_s:.2f}s")
    assert load_s < 5

    t0 = time.perf_counter()
    browser.goto(big_sink.api_url + "/#/analytics")
    analytics_s = time.perf_counter() - t0
    assert browser.js("document.querySelector('[data-testid=total-sessions] .v').textContent") \
        == "100,000"
    browser.screenshot("analytics-100k")
    print(f"analytics page in the browser: {analytics_s:.2f}s")
    assert analytics_s < 10
    assert browser.errors == []


def test_shell_state_snapshots_show_as_a_difference(browser, tmp_path):
    """The session page compares two snapshots (first and last by default, any pair chosen);
    secret values stay redacted as the shell side sent them."""
    from shellspan import spans as span_model
    from shellspan.otlp import encode_request, new_span_id, new_trace_id
    from shellspan.snapshot import Snapshot
    from shellspan_testing.otlp_builders import post as post_body

    sink = SinkProcess(tmp_path / "snap-sink").start()
    try:
        tid, root, now = new_trace_id(), new_span_id(), time.time_ns()
        ident = span_model.identity(session_id=tid.hex(), shell_type="bash", user="erin",
                                    host="web-2", pid=7, parent_pid=1, cwd="/srv")
        start, middle, end = Snapshot("/srv"), Snapshot("/srv/app"), Snapshot("/tmp")
        start.env_source, start.git_branch, start.git_dirty = "start", "main", False
        middle.env_source, middle.env_changed = "command 42 make", {"AWS_PROFILE": "prod"}
        middle.git_branch, middle.git_dirty, middle.jobs = "main", True, ["99 T vim notes"]
        end.env_source = "command 50 sleep"
        end.env_changed = {"AWS_PROFILE": "staging", "DB_PASSWORD": "[REDACTED]"}
        end.env_removed = ["LANG"]
        events = [span_model.snapshot_event(kind, now + i * 10**9, snap) for i, (kind, snap) in
                  enumerate([("start", start), ("heartbeat", middle), ("end", end)])]
        body = encode_request([
            span_model.start_span(tid, root, ident, now, now, events=[events[0]]),
            span_model.heartbeat_span(tid, root, shell_type="bash", cwd="/srv/app",
                                      command_count=3, now_ns=now + 10**9, events=[events[1]]),
            span_model.session_span(tid, root, ident, start_ns=now, end_ns=now + 3 * 10**9,
                                    reason="exit", exit_code=0, command_count=3, failed_count=0,
                                    last_cwd="/tmp", events=[events[2]])], {})
        assert post_body(sink.otlp_http_endpoint, body).status == 200
        sink.wait_for(lambda: len(sink.session(tid.hex()).get("snapshots", [])) == 3)

        browser.goto(sink.api_url + f"/#/sessions/{tid.hex()}")
        browser.wait("!!document.querySelector('[data-testid=snapshots-card]')")
        rows_js = """Object.fromEntries([...document.querySelectorAll(
            '[data-testid=snapshot-row]')].map(r => [r.dataset.key,
            [...r.querySelectorAll('td')].slice(1).map(td => td.textContent)]))"""
        rows = browser.js(rows_js)
        assert rows["cwd"] == ["/srv", "/tmp"]
        assert rows["env:AWS_PROFILE"] == ["(as at start)", "staging"]
        assert rows["env:DB_PASSWORD"] == ["(as at start)", "[REDACTED]"]
        assert rows["env:LANG"] == ["(as at start)", "(unset)"]
        assert rows["git_branch"] == ["main", "—"] and "venv" not in rows  # unchanged: hidden
        browser.js("""(() => { const s = document.querySelector('[data-testid=snapshot-from]');
            s.value = '1'; s.dispatchEvent(new Event('change')); })()""")
        rows = browser.js(rows_js)
        assert rows["env:AWS_PROFILE"] == ["prod", "staging"]
        assert rows["jobs"] == ["99 T vim notes", "none"]
        assert rows["git_dirty"] == ["yes", "—"]
        browser.screenshot("session-snapshots")
        assert browser.errors == []
    finally:
        sink.stop()


def _send(sink: SinkProcess, spans: list) -> None:
    assert post(sink.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200


def test_an_open_session_page_shows_commands_as_they_arrive(sink, browser):
    spec = SessionSpec(user="live-page", host="web-7", ended=False,
                       commands=[Command("uptime"), Command("false", exit_code=1)])
    spans = session_spans(spec)
    start, commands = spans[:1], spans[1:]
    _send(sink, start + commands[:1])
    sink.wait_for(lambda: sink.sessions(user="live-page"))
    browser.goto(sink.api_url + f"/#/sessions/{spec.session_id}")
    browser.wait("document.querySelectorAll('[data-testid=command-row]').length === 1")
    _send(sink, commands[1:])
    browser.wait("document.querySelectorAll('[data-testid=command-row]').length === 2")
    assert browser.js("[...document.querySelectorAll('[data-testid=command-text]')]"
                      ".map(t => t.textContent)") == ["uptime", "false"]
    assert browser.js("location.hash") == f"#/sessions/{spec.session_id}"  # no navigation
    root = [s for s in session_spans(SessionSpec(user="live-page", host="web-7",
                                                 trace_id=spec.trace_id, start_ns=spec.start_ns))
            if s.name == "shell.session"]
    _send(sink, root)
    browser.wait("document.querySelector('h1 [data-testid=state]').textContent === 'ended'")
    browser.screenshot("session-live")
    assert browser.errors == []


def test_the_sessions_list_updates_in_place_from_the_changes_stream(sink, browser):
    user = "live-" + uuid.uuid4().hex[:6]
    browser.goto(sink.api_url + f"/#/sessions?user={user}&state=active")
    browser.wait("document.querySelector('[data-testid=sessions-body] td.empty') !== null")
    requests_before = browser.js("performance.getEntriesByType('resource').filter(e => "
                                 "e.name.includes('/api/sessions?')).length")
    spec = SessionSpec(user=user, host="web-8", ended=False, commands=[])
    _send(sink, session_spans(spec))
    row = f"[data-testid=session-row][data-session-id='{spec.session_id}']"
    browser.wait(f"document.querySelector(\"{row}\")?.dataset.state === 'active'")
    _send(sink, session_spans(SessionSpec(user=user, host="web-8", trace_id=spec.trace_id,
                                          start_ns=spec.start_ns,
                                          commands=[Command("ls")]))[1:2])
    browser.wait(f"document.querySelector(\"{row} td:nth-child(9)\")?.textContent === '1'")
    other = SessionSpec(user=user, host="web-9", ended=False, start_ns=spec.start_ns + 10**9)
    _send(sink, session_spans(other))
    browser.wait("[...document.querySelectorAll('[data-testid=session-row]')].map(r => "
                 f"r.dataset.sessionId).join() === '{other.session_id},{spec.session_id}'")
    ended = [s for s in session_spans(SessionSpec(user=user, host="web-8", trace_id=spec.trace_id,
                                                  start_ns=spec.start_ns))
             if s.name == "shell.session"]
    _send(sink, ended)  # it leaves the active list
    browser.wait(f"document.querySelector(\"{row}\") === null")
    assert browser.js("document.querySelectorAll('[data-testid=session-row]').length") == 1
    # The list was not fetched again for any of it (a row leaving a short page reloads it once).
    requests_after = browser.js("performance.getEntriesByType('resource').filter(e => "
                                "e.name.includes('/api/sessions?')).length")
    assert requests_after - requests_before <= 2
    assert "live" in browser.js("document.getElementById('live').textContent")
    browser.screenshot("sessions-list-live")
    assert browser.errors == []
