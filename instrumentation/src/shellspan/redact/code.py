"""Which reading a piece of code gets: Python when it parses as Python (and is more than a shell
line that happens to parse), a shell command line otherwise; and neither when it holds none of the
words the rules start from, which is most lines and costs a few substring tests."""

from __future__ import annotations

import keyword
import re

from shellspan.redact.commands import TRIGGER_NAMES
from shellspan.redact.names import TRIGGER_STEMS
from shellspan.redact.words import Span

MAX_DEPTH = 4  # command lines inside command lines (bash -c "...", $(...), python -c "...")

# Words that could name a command (``https`` of ``https://`` does not).
_NAME_WORDS = re.compile(r"[\w.+\-]+(?![\w.+\-]|:/)")
_SUDO_STDIN = re.compile(r"\s-[A-Za-z]*S|--stdin")
_PYTHON_HINT = re.compile(r"[=(]")
# ``git status``, ``export X=1``: a first word followed by a name cannot start a Python statement.
_NOT_PYTHON = re.compile(r"\s*([A-Za-z_]\w*)[ \t]+([A-Za-z_]\w*|[$'\"])")
_PYTHON_WORDS = frozenset(keyword.kwlist) | {"match", "case", "type", "_"}


def triggered(text: str) -> bool:
    """Whether the text has a trigger stem, a command of the tool table or ``sudo -S``."""
    low = text.lower()
    if any(s in low for s in TRIGGER_STEMS):
        return True
    words = _NAME_WORDS.findall(low)
    return not TRIGGER_NAMES.isdisjoint(words) or (
        "sudo" in words and _SUDO_STDIN.search(text) is not None)


_ANY_STEM = re.compile("|".join(map(re.escape, TRIGGER_STEMS)))


def may_trigger(text: str) -> bool:
    """False when ``triggered`` is false for every part of ``text`` (every line of a long
    text): one scan for the stems, one for the command names."""
    low = text.lower()
    if _ANY_STEM.search(low) is not None:
        return True
    words = _NAME_WORDS.findall(low)
    return not TRIGGER_NAMES.isdisjoint(words) or "sudo" in words


def _may_be_python(text: str) -> bool:
    if _PYTHON_HINT.search(text) is None:
        return False
    m = _NOT_PYTHON.match(text)
    return m is None or m.group(1) in _PYTHON_WORDS or m.group(2) in _PYTHON_WORDS


def code_spans(text: str, depth: int = 0) -> list[Span]:
    """Spans of ``text`` (a command line or Python source) that hold secrets."""
    if depth > MAX_DEPTH or not triggered(text):
        return []
    from shellspan.redact import python, shell  # they read nested code through this function

    tree = python.parse(text) if _may_be_python(text) else None
    found = python.python_spans(text, tree, depth) if tree is not None else None
    if found is not None:
        return found
    found = shell.shell_spans(text, depth)
    if tree is None and "\n" in text:
        found = _python_lines(text, found, depth)
    return found


def _python_lines(text: str, shell_found: list[Span], depth: int) -> list[Span]:
    """Lines that are Python on their own amid lines that are not (an IPython cell with ``!cmd``
    lines, a Python statement in a here-document) are read as Python."""
    from shellspan.redact import python

    out = shell_found
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if not (triggered(line) and _may_be_python(line)):
            continue
        tree = python.parse(line)
        found = python.python_spans(line, tree, depth) if tree is not None else None
        if found is not None:
            out = [sp for sp in out if sp[1] <= start or sp[0] >= end]
            out.extend((start + a, start + b) for a, b in found)
    return out
