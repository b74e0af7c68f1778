"""Fixtures of the sink part."""

import pytest

from shellspan_testing.sinkproc import SinkProcess


@pytest.fixture(scope="session")
def shared_sink(tmp_path_factory):
    """One sink for every test of the part that needs no configuration of its own (tests tell
    their data apart by user and session id). Sessions without a root turn abandoned after 3 s."""
    proc = SinkProcess(tmp_path_factory.mktemp("shared"), extra_args=["--abandon-after", "3"])
    yield proc.start()
    proc.stop()
