"""Telling a hung-up terminal from Ctrl-D, os._exit ending the session, the .pth file."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys

from shellspan.auto import PTH_LINE, PTH_NAME, install_pth
from shellspan.endings import terminal_hung_up


def test_a_hung_up_terminal_is_told_apart_from_a_live_one_and_from_a_pipe():
    master, slave = pty.openpty()
    r, w = os.pipe()
    try:
        assert not terminal_hung_up((slave,))  # live (not our controlling terminal: ENOTTY)
        assert not terminal_hung_up((r, w))
        os.close(master)  # the terminal window closes: the kernel hangs the terminal up
        master = -1
        assert os.read(slave, 10) == b""  # what the console reads: like Ctrl-D
        assert terminal_hung_up((r, slave))
    finally:
        for fd in (master, slave, r, w):
            if fd >= 0:
                os.close(fd)


def test_os_exit_ends_the_session_first(tmp_path):
    """In a real process: the session's end (root span, exit code) is spooled before the
    process goes (the endpoint is down), and a forked child's os._exit does not end it."""
    script = (
        "import os\n"
        "from shellspan.session import Session\n"
        "from shellspan.endings import wrap_os_exit\n"
        "s = Session('python').start()\n"
        "seen = []\n"
        "wrap_os_exit(s, seen.append)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(9)\n"
        "os.waitpid(pid, 0)\n"
        "assert s.exit_reason is None, 'a child ended the session'\n"
        "os._exit(4)\n")
    env = {**os.environ, "SHELLSPAN_SPOOL_DIR": str(tmp_path / "spool"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "SHELLSPAN_EXIT_HANDOFF": "0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for entry in sorted((tmp_path / "spool").iterdir()):
        req = ExportTraceServiceRequest.FromString(entry.read_bytes())
        spans += [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    root = [s for s in spans if s.name == "shell.session"]
    assert len(root) == 1
    attrs = {kv.key: kv.value for kv in root[0].attributes}
    assert attrs["shell.exit.reason"].string_value == "exit"
    assert attrs["process.exit.code"].int_value == 4


def test_the_pth_file_is_readable_by_all_and_never_written_through_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / PTH_NAME).symlink_to(victim)
    path = install_pth(str(tmp_path))
    assert victim.read_text() == "keep"
    assert not os.path.islink(path) and open(path).read() == PTH_LINE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == sorted([PTH_NAME, "victim"])
