"""A scaled-down run of bench/bench_load.py: simulated shells with a burst against a real sink
with auth on and a small spool, so 503s occur; nothing acknowledged may be lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_load.py"


def test_load_burst_loses_nothing():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--shells", "20", "--duration", "8", "--burst-duration", "5",
         "--max-spool-mib", "0.5", "--flush-timeout", "20", "--drain-timeout", "20"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "spans lost (accepted but not stored): 0;" in out.stdout
    assert "spans accepted (HTTP 200 / gRPC OK): 0" not in out.stdout
