"""The browser the UI tests drive: one headless Chromium per test module."""

import pytest

from shellspan_testing.browser import Browser


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()
