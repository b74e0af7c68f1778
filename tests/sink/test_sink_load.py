"""A scaled-down run of bench/bench_load.py: simulated shells with a burst against a real sink
with auth on and a small WAL, so 503s occur; nothing acknowledged may be lost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_load.py"


@pytest.mark.slow
def test_load_burst_loses_nothing():
    # Segments sealed after 1 s and a 0.15 MiB WAL: in the burst (100 shells, about 700 spans/s)
    # the open segment alone outgrows the bound, so the sink must refuse with retryable answers,
    # and the shells retry.
    env = {**os.environ, "SHELLSPAN_WAL_SEGMENT_AGE": "1"}
    out = subprocess.run(
        [sys.executable, str(BENCH), "--shells", "10", "--duration", "1", "--burst-duration", "1",
         "--max-wal-mib", "0.15", "--flush-timeout", "20", "--drain-timeout", "20"],
        capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "spans lost (accepted but not stored): 0;" in out.stdout
    assert "spans accepted (HTTP 200 / gRPC OK): 0" not in out.stdout
    refused = re.search(r"then retried\): \d+ in (\d+) answers", out.stdout)
    assert refused and int(refused.group(1)) > 0, "the burst never met the WAL's bound:\n" + out.stdout
