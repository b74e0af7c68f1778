"""`make bench`: every benchmark, one after another, each printing its own side-by-side ratios.

    .venv/bin/python bench/run.py [name ...]    (names: ingest, ingest-python, queries, live,
                                                 python-shell, posix-shell, recovery, load,
                                                 encoder, redaction, recordings, record)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BENCHES = {
    "encoder": ([PY, "sink-accel/bench_convert.py"], {}),
    "ingest": ([PY, "bench/bench_ingest.py"], {}),
    "ingest-python": ([PY, "bench/bench_ingest.py"], {"SHELLSPAN_ENCODER": "python"}),
    "queries": ([PY, "bench/bench_queries.py"], {}),
    "live": ([PY, "bench/bench_live.py"], {}),
    "python-shell": ([PY, "bench/bench_python_shell.py", "--runs", "15"], {}),
    "posix-shell": ([PY, "bench/bench_posix_shell.py"], {}),
    "recovery": ([PY, "bench/bench_recovery.py"], {}),
    "load": ([PY, "bench/bench_load.py"], {}),
    "redaction": ([PY, "bench/bench_redaction.py"], {}),
    "recordings": ([PY, "bench/bench_recordings.py"], {}),
    "record": ([PY, "bench/bench_record.py"], {}),
}


def main(names: list[str]) -> int:
    failed = []
    for name in names or list(BENCHES):
        cmd, env = BENCHES[name]
        if not (ROOT / cmd[1]).exists():
            print(f"== {name}: {cmd[1]} not present, skipped", flush=True)
            continue
        shown = " ".join(f"{k}={v}" for k, v in env.items()) + (" " if env else "")
        print(f"\n== {name}: {shown}{' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}).returncode != 0:
            failed.append(name)
    print(f"\nbenchmarks below their floor: {', '.join(failed)}" if failed else "\nall floors met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
