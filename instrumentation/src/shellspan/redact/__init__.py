"""Redaction of secrets in command text, applied on the shell host before anything leaves it.

``Redactor.redact(text)`` returns the text with every secret replaced by ``MARK`` and whether
anything was replaced; the caller puts that flag on the span (``shell.command.redacted``), so a
redaction is visible, never silent. Only the secret goes: the command, the option, the user name
and the variable name stay readable (``curl -u admin:[REDACTED]``, ``export TOKEN=[REDACTED]``).

The rules come in families, each in its own module, all finding *spans* of the original text;
the spans are merged before one rebuild, so rules never see each other's markers and never
produce two markers for one secret; a line that reads differently once redacted is redacted
again, so that redacting twice changes nothing:

- ``text``: anywhere: URL userinfo, bearer tokens, well-known token shapes, private keys;
- ``words``: ``name=value``/``name: value`` pairs whose name looks secret (``names``), in any word;
- ``commands``: the table of tools that take secrets as option values, positional arguments or
  on stdin, and the analysis of one command's arguments;
- ``shell``: a command line split into words, commands, pipelines, here-strings and
  here-documents, for the rules above, secrets piped into readers, command lines nested in quotes;
- ``python``: Python source, from its syntax tree (assignments, arguments, dictionaries, calls);
- ``code``: which of the two readings a text gets, and none for the many lines that hold none of
  the words the rules start from (they cost only the ``text`` scan);
- extra patterns from ``SHELLSPAN_REDACT_PATTERNS`` (regular expressions separated by newlines or
  by ``;;``; a pattern with a group named ``secret`` redacts only that group, otherwise the match).

The families, the policy and their limits are described in docs/redaction.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from shellspan.redact import python, shell  # noqa: F401  (loaded now, not at the first command)
from shellspan.redact.code import code_spans, may_trigger
from shellspan.redact.names import MARK, is_secret_name
from shellspan.redact.text import may_find, text_spans
from shellspan.redact.words import Span

__all__ = ["MARK", "Redactor", "default_redactor", "is_secret_name", "patterns_from_env",
           "redact"]

_MAX_PASSES = 4


class Redactor:
    """Replace secrets in text with ``MARK``; ``redact`` returns (text, redacted?)."""

    def __init__(self, extra_patterns: Iterable[str] = (), *, use_defaults: bool = True) -> None:
        self.use_defaults = use_defaults
        self.patterns: list[re.Pattern[str]] = []
        for src in extra_patterns:
            if not src:
                continue
            try:
                self.patterns.append(re.compile(src))
            except re.error:
                continue  # a bad user pattern must not break the shell

    def spans(self, text: str) -> list[Span]:
        """Every span of ``text`` that holds a secret (unmerged, possibly overlapping)."""
        out: list[Span] = []
        if self.use_defaults:
            out.extend(text_spans(text))
            out.extend(code_spans(text))
        for pat in self.patterns:
            for m in pat.finditer(text):
                s, e = m.span("secret") if "secret" in pat.groupindex else m.span()
                if e > s:
                    out.append((s, e))
        return out

    def may_find(self, text: str) -> bool:
        """False when ``spans`` finds nothing in any line of ``text``: none of the words the
        rules start from is in it (a cheap test for long texts redacted line by line, such as
        terminal output)."""
        if self.patterns:
            return True
        return self.use_defaults and (may_find(text) or may_trigger(text))

    def redact(self, text: str) -> tuple[str, bool]:
        """The text with each secret replaced by ``MARK``, and whether anything was.

        A line that reads differently once redacted (a shell line that becomes valid Python)
        is redacted again, so that redacting a redacted line never changes it.
        """
        out = text
        try:
            for _ in range(_MAX_PASSES):
                again = self._replace(out, self.spans(out))
                if again == out:
                    break
                out = again
        except Exception:  # a fault in a rule must neither leak the line nor break the shell
            return MARK, True
        return out, out != text

    @staticmethod
    def _replace(text: str, spans: list[Span]) -> str:
        merged: list[list[int]] = []
        for s, e in sorted(spans):
            if e <= s:
                continue
            if merged and s <= merged[-1][1]:  # overlapping or touching: one marker
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        if not merged:
            return text
        parts: list[str] = []
        pos = 0
        for s, e in merged:
            parts.append(text[pos:s])
            parts.append(MARK)
            pos = e
        parts.append(text[pos:])
        return "".join(parts)


def patterns_from_env(environ: dict[str, str] | None = None) -> list[str]:
    """Extra patterns from ``SHELLSPAN_REDACT_PATTERNS`` (newline- or ``;;``-separated)."""
    env = os.environ if environ is None else environ
    raw = env.get("SHELLSPAN_REDACT_PATTERNS", "")
    return [p.strip() for p in re.split(r"\n|;;", raw) if p.strip()]


_default: Redactor | None = None


def default_redactor() -> Redactor:
    """The process-wide redactor: defaults plus ``SHELLSPAN_REDACT_PATTERNS``."""
    global _default
    if _default is None:
        _default = Redactor(patterns_from_env())
    return _default


def redact(text: str) -> tuple[str, bool]:
    """Redact with the process-wide redactor."""
    return default_redactor().redact(text)
