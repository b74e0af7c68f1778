import pytest
from sinkproc import SinkProcess


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
