"""Fixtures of the sink part: sinks shared across its modules, which tell their data apart by user
and session id."""

import time

import jwt
import pytest

from shellspan_testing.sinkproc import SinkProcess, running

LIMITED_SECRET = "limited-sink-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def part_sinks(tmp_path_factory):
    """The part's shared sinks, started together when the first is needed."""
    shared = SinkProcess(tmp_path_factory.mktemp("shared"), extra_args=["--abandon-after", "3"])
    limited = SinkProcess(tmp_path_factory.mktemp("limited"), extra_args=[
        "--max-body-bytes", "1000000", "--max-inflight-bytes", "3000000", "--body-timeout", "2",
        "--max-span-age", "2d", "--max-span-ahead", "1h"],
        env={"SHELLSPAN_AUTH_SECRET": LIMITED_SECRET, "SHELLSPAN_AUTH_MODE": "optional"})
    limited.read_token = jwt.encode({"sub": "reader", "aud": "shellspan", "scope": "sessions:read",
                                     "exp": int(time.time()) + 3600}, LIMITED_SECRET,
                                    algorithm="HS256")
    with running(shared, limited) as sinks:
        yield sinks


@pytest.fixture(scope="session")
def shared_sink(part_sinks):
    """A sink with the defaults, except that sessions without a root turn abandoned after 3 s."""
    return part_sinks[0]


@pytest.fixture(scope="session")
def limited_sink(part_sinks):
    """A sink with tight limits: 1 MB bodies, 3 MB of request bodies in flight, 2 s for a body to
    arrive, spans from 2 days back to 1 hour ahead; optional authentication (no token is fine, a
    bad one is refused; reads need a token, which `read_token` holds)."""
    return part_sinks[1]
