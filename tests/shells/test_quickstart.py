"""docs/quickstart.md is run as written, and every SQL query in docs/cookbook.md runs.

The quick start's ```sh blocks are joined into one bash script and run from the repository
root with a fresh HOME. The only changes made to the text: the default ports (4318, 4317,
8678) become free ports, so the test never collides with a sink already running on the machine.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import uuid
from pathlib import Path

import pytest

from shellspan.auth import login_name
from shellspan_testing.otlp_builders import Command, SessionSpec, post, request_for, session_spans
from shellspan_testing.sinkproc import REPO, SinkProcess, free_port

DOCS = REPO / "docs"
BIN = Path(sys.executable).parent
BASH_MARKERS = ("shellspan init bash", "bash -i", "shellspan agent")


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), re.S | re.M)


def bash_hooks_available() -> str | None:
    """None when `shellspan init bash` works, else why not."""
    try:
        done = subprocess.run([str(BIN / "shellspan"), "init", "bash"], capture_output=True,
                              text=True, timeout=30)
    except OSError as exc:
        return f"cannot run shellspan: {exc}"
    if done.returncode != 0 or not done.stdout.strip():
        return f"`shellspan init bash` is not available yet (exit {done.returncode})"
    return None


def setup_is_current() -> bool:
    return subprocess.run(["make", "-q", "setup"], cwd=REPO, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quickstart")
    (tmp / "home").mkdir()
    (tmp / "run").mkdir(mode=0o700)
    skipped: list[str] = []
    bash_missing = bash_hooks_available()
    script_blocks = []
    for block in blocks(DOCS / "quickstart.md", "sh"):
        if bash_missing and any(m in block for m in BASH_MARKERS):
            skipped.append(f"bash part skipped: {bash_missing}")
            continue
        script_blocks.append(block)
    script = "\n".join(script_blocks)
    if not setup_is_current():
        # `make test` runs `make setup` first, so there this line runs (as a no-op). Run alone,
        # a stale environment would be re-synced under every other running test.
        script = script.replace("make setup\n", ": make setup skipped\n")
        skipped.append("`make setup` not run: the environment is out of date (make test syncs it)")
    ports = {"4318": free_port(), "4317": free_port(), "8678": free_port()}
    for default, port in ports.items():
        script = script.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "SHELLSPAN_", "TRACE", "BAGGAGE", "PYTHONSTARTUP",
                                "XDG_STATE_HOME", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), TMPDIR=str(tmp), USER="qs" + uuid.uuid4().hex[:8],
               SHELLSPAN_OTLP_HTTP=f"127.0.0.1:{ports['4318']}",
               SHELLSPAN_OTLP_GRPC=f"127.0.0.1:{ports['4317']}",
               SHELLSPAN_API_LISTEN=f"127.0.0.1:{ports['8678']}",
               SHELLSPAN_API=f"http://127.0.0.1:{ports['8678']}", TERM="dumb",
               XDG_RUNTIME_DIR=str(tmp / "run"))  # the bash agent's socket stays in here
    (tmp / "quickstart.sh").write_text(script)
    proc = subprocess.Popen(["bash", "-euo", "pipefail", str(tmp / "quickstart.sh")], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the sink, if the script stopped early
        except ProcessLookupError:
            pass
        if not bash_missing:  # the agent the bash shell started, if the script stopped early
            subprocess.run([str(BIN / "shellspan"), "agent", "stop"], env=env, timeout=30,
                           capture_output=True)
    for reason in skipped:
        print(f"quickstart: {reason}")
    log = tmp / "shellspan-sink.log"
    return {"rc": proc.returncode, "out": out, "err": err, "skipped": skipped, "bash": not bash_missing,
            "bash_reason": bash_missing, "log": log.read_text() if log.exists() else "",
            "user": login_name(),  # a Python shell's user.name comes from its uid
            "env_user": env["USER"], "home": tmp / "home", "run": tmp / "run",
            "endpoint": f"http://127.0.0.1:{ports['4318']}"}


def explain(result: dict) -> str:
    return f"stdout:\n{result['out']}\nstderr:\n{result['err']}\nsink log:\n{result['log'][-3000:]}"


def test_quickstart_has_commands():
    text = blocks(DOCS / "quickstart.md", "sh")
    assert len(text) >= 6 and any("shellspan python" in b for b in text)
    assert any("shellspan init bash" in b for b in text)


def test_quickstart_runs_to_the_end(quickstart):
    assert quickstart["rc"] == 0, explain(quickstart)
    assert '"status": "ok"' in quickstart["out"], explain(quickstart)
    assert "reachable (HTTP 200)" in quickstart["out"], explain(quickstart)
    assert "shutting down" in quickstart["log"]  # `kill` stopped the sink cleanly


def test_quickstart_python_session_is_recorded(quickstart):
    out = quickstart["out"]
    listed = [line for line in out.splitlines() if re.match(r"^[0-9a-f]{32}\s", line)]
    python = [line for line in listed if " python " in line]
    assert python and " ended " in python[0], explain(quickstart)
    # `sessions show` of the Python session: its commands in order with their exit codes.
    rows = {}
    for line in out.split("SEQ  START_TIME", 1)[1].splitlines()[1:]:
        m = re.match(r"^(\d+)\s+\S+\s+[\d.]+\s+(-?\d+)\s+\S+\s+(.*)$", line)
        if not m:
            break  # the end of the command table
        rows[int(m.group(1))] = (int(m.group(2)), m.group(3).strip())
    assert [rows[i] for i in sorted(rows)] == [
        (0, "import platform"), (0, "platform.python_version()"), (1, "1 / 0"),
        (0, 'print("done")')], explain(quickstart)
    assert f"identity           unverified; claims user {quickstart['user']}" in out


def test_quickstart_rc_line_works_in_a_new_terminal(quickstart):
    """A new terminal after the quick start: its PATH does not have .venv/bin (the quick start's
    `export PATH=...` lasted one terminal), yet the line added to ~/.bashrc works."""
    if not quickstart["bash"]:
        pytest.skip(quickstart["bash_reason"])
    import pexpect

    env = {"HOME": str(quickstart["home"]), "PATH": "/usr/local/bin:/usr/bin:/bin",
           "TERM": "dumb", "USER": quickstart["env_user"], "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(quickstart["run"]),
           "OTEL_EXPORTER_OTLP_ENDPOINT": quickstart["endpoint"]}
    sh = pexpect.spawn("bash", ["-i"], env=env, encoding="utf-8", timeout=30, cwd=str(REPO))
    sh.logfile_read = seen = io.StringIO()
    try:
        sh.sendline('echo "session=[$SHELLSPAN_SESSION_ID]"')
        sh.expect(r"session=\[([0-9a-f]*)\]")
        sid = sh.match.group(1)
        sh.sendline("exit")
        sh.expect(pexpect.EOF)
        shown = seen.getvalue()
    finally:
        sh.close(force=True)
        subprocess.run([str(BIN / "shellspan"), "agent", "stop"], env=env, timeout=30,
                       capture_output=True)
    assert len(sid) == 32, sid  # the hooks run in the new terminal
    assert "command not found" not in shown and "No such file" not in shown, shown


def test_quickstart_bash_session_is_recorded(quickstart):
    if not quickstart["bash"]:
        print(f"skipping: {quickstart['bash_reason']}")
        pytest.skip(quickstart["bash_reason"])
    listed = [line for line in quickstart["out"].splitlines() if re.match(r"^[0-9a-f]{32}\s", line)]
    assert any(" bash " in line and " ended " in line for line in listed), explain(quickstart)


# --- the cookbook ---------------------------------------------------------------------------

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def cookbook_sink(tmp_path_factory, request):
    proc = SinkProcess(tmp_path_factory.mktemp("cookbook")).start()
    request.addfinalizer(proc.stop)  # also when the set-up below fails
    now = time.time_ns()
    specs = [
        SessionSpec(user="alice", host="web-1", start_ns=now - 30 * HOUR_NS, duration_s=900,
                    commands=[Command("sudo systemctl restart nginx"), Command("false", exit_code=1)]),
        SessionSpec(user="bob", host="db-1", shell_type="zsh", start_ns=now - 3 * HOUR_NS,
                    duration_s=7200, commands=[Command("sudo -i"), Command("make", exit_code=2)]),
        SessionSpec(user="carol", host="web-1", ended=False, start_ns=now - 10**9,
                    commands=[Command("tail -f /var/log/syslog")]),
    ]
    spans = [span for spec in specs for span in session_spans(spec)]
    assert post(proc.otlp_http_endpoint, request_for(spans).SerializeToString()).status == 200
    proc.wait_for(lambda: len(proc.sessions()) == len(specs))
    yield proc


COOKBOOK = blocks(DOCS / "cookbook.md", "sql")


def test_cookbook_has_ten_queries():
    assert len(COOKBOOK) >= 10


@pytest.mark.parametrize("query", COOKBOOK, ids=[f"q{i + 1}" for i in range(len(COOKBOOK))])
def test_cookbook_query_runs(cookbook_sink, query):
    try:
        result = cookbook_sink.sql(query.strip().rstrip(";"))
    except urllib.error.HTTPError as exc:
        pytest.fail(f"{exc}: {exc.read().decode(errors='replace')}")
    assert isinstance(result["rows"], list)


def first_column(sink, number: int) -> list:
    return [row[0] for row in sink.sql(COOKBOOK[number - 1].strip().rstrip(";"))["rows"]]


def test_cookbook_answers(cookbook_sink):
    # 1: who ran sudo on which host last week -> alice and bob
    assert sorted(first_column(cookbook_sink, 1)) == ["alice", "bob"]
    # 2: longest sessions: bob's two hours first
    assert first_column(cookbook_sink, 2)[0] == cookbook_sink.sessions(user="bob")[0]["session_id"]
    # 4: sessions still open: carol's
    assert first_column(cookbook_sink, 4) == [cookbook_sink.sessions(user="carol")[0]["session_id"]]
