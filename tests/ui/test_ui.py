"""The web UI in headless Chromium, over a sink holding real recorded sessions.

Chromium is driven through the DevTools protocol (a websocket, via aiohttp, which the sink
already depends on). Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import pytest

from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import REPO, SinkProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "ui"
SHELLSPAN = str(Path(sys.executable).with_name("shellspan"))
HOUR_NS = 3600 * 10**9

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="chromium is not installed (apt-get install -y chromium chromium-driver)")


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "--window-size=1400,900"]

    def __init__(self) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="shellspan-chromium-"))
        self.proc = subprocess.Popen([CHROMIUM, *self.FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.loop = asyncio.new_event_loop()
        self.errors: list[str] = []
        self._id = 0
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.loads(resp.read()) if t["type"] == "page")
        self.http = self.loop.run_until_complete(self._session())
        self.ws = self.loop.run_until_complete(
            self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0))
        for method in ("Page.enable", "Runtime.enable"):
            self.call(method)
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=900,
                  deviceScaleFactor=1, mobile=False)

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def _devtools_port(self, timeout: float = 20.0) -> int:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    async def _call(self, method: str, params: dict) -> dict:
        self._id += 1
        msg_id = self._id
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection closed: {msg}")
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            self._event(data)

    def _event(self, data: dict) -> None:
        method, params = data.get("method"), data.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                        for a in params.get("args", [])))

    def call(self, method: str, **params) -> dict:
        return self.loop.run_until_complete(self._call(method, params))

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        self.screenshot("timeout")
        raise TimeoutError(f"not true within {timeout}s: {expression}")

    def goto(self, url: str) -> None:
        self.js("document.body && (document.body.dataset.loaded = '')")
        self.call("Page.navigate", url=url)
        self.wait_loaded()

    def wait_loaded(self, view: str | None = None) -> None:
        cond = "document.body && document.body.dataset.loaded === '1'"
        if view:
            cond += f" && document.body.dataset.view === {json.dumps(view)}"
        self.wait(cond)

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre."""
        box = self.wait(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            if (!el) return null; el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = int(self.js("document.documentElement.scrollHeight") or 900)
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=min(max(height, 900), 6000),
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=900,
                  deviceScaleFactor=1, mobile=False)
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.ws.close())
            self.loop.run_until_complete(self.http.close())
        finally:
            self.loop.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


def record_python_session(sink: SinkProcess, tmp: Path, user: str, lines: list[str],
                          exit_code: int = 0) -> None:
    """A real `shellspan python` session fed through its standard input."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "SHELLSPAN_", "TRACE", "BAGGAGE", "PYTHONSTARTUP"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=sink.otlp_http_endpoint, USER=user,
               SHELLSPAN_SPOOL_DIR=str(tmp / f"spool-{user}"), HOME=str(tmp))
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
    user = "ui" + uuid.uuid4().hex[:8]
    record_python_session(proc, tmp, user, REAL_LINES, exit_code=3)
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
    proc.wait_for(lambda: len(proc.sessions()) == 6 and len(proc.sessions(user=user)) == 1
                  and proc.sessions(user=user)[0]["state"] == "ended")
    proc.real_user = user
    yield proc


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


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
    browser.wait("document.querySelectorAll('[data-testid=session-row]').length === 1")
    session_id = browser.js("document.querySelector('[data-testid=session-row]').dataset.sessionId")
    browser.click("[data-testid=session-row] td:nth-child(7)")  # a plain cell: the row is the link
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
