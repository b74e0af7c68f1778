"""Fixtures shared by every part of the suite, and the part markers.

Each folder of tests/ is one part (`unit`, `sink`, `shells`, `collector`, `ui`); its tests carry
the marker of that name, so `pytest -m sink` or `make test-fast` (unit and sink) runs one part.
"""

import os
from pathlib import Path

import pytest

from shellspan_testing.sinkproc import SinkProcess

PARTS = ("unit", "sink", "shells", "collector", "ui")
_HERE = Path(__file__).resolve().parent

# Sinks started by the tests seal their WAL segment after 0.1 s instead of 0.5 s, so what a test
# sent is queryable sooner (the benchmarks keep the default). A test may still set it itself.
os.environ.setdefault("SHELLSPAN_WAL_SEGMENT_AGE", "0.1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            part = Path(item.fspath).resolve().relative_to(_HERE).parts[0]
        except ValueError:
            continue
        if part in PARTS:
            item.add_marker(getattr(pytest.mark, part))


@pytest.fixture
def sink(tmp_path):
    """A fresh sink process on embedded chDB, stopped after the test."""
    proc = SinkProcess(tmp_path / "sink").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def module_sink(tmp_path_factory):
    """One sink for a whole test module (tests tell their sessions apart by user name)."""
    proc = SinkProcess(tmp_path_factory.mktemp("sink")).start()
    yield proc
    proc.stop()


@pytest.fixture
def sink_factory(tmp_path):
    """Start sinks with custom arguments: `sink_factory(extra_args=[...], env={...})`."""
    started: list[SinkProcess] = []

    def make(name: str = "sink", **kwargs) -> SinkProcess:
        proc = SinkProcess(tmp_path / name, **kwargs)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.stop()
