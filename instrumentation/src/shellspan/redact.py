"""Redaction of secrets in command text, applied on the shell host before anything leaves it.

``Redactor.redact(text)`` returns the text with every secret replaced by ``MARK`` and whether
anything was replaced; the caller puts that flag on the span (``shell.command.redacted``), so a
redaction is visible, never silent. Extra patterns come from ``SHELLSPAN_REDACT_PATTERNS``
(regular expressions separated by newlines, or by ``;;``); a pattern with a group named
``secret`` redacts only that group, otherwise the whole match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MARK = "[REDACTED]"

# Names whose assigned value is a secret: password=..., API_KEY: ..., --token ..., etc.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9_.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|credentials?|auth|session[_-]?key|client[_-]?secret)[A-Za-z0-9_.-]*)"
)

DEFAULT_PATTERNS: tuple[str, ...] = (
    # Credentials in URLs: scheme://user:password@host
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s@/'\"]+)(?=@)",
    # Authorization headers and bearer tokens.
    r"(?i)(?P<pre>\b(?:bearer|basic|token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    # name = value / name: value / "name": "value" / name=value in shell, Python, JSON, YAML.
    r"(?i)(?P<pre>\b" + _SECRET_NAME + r"\b['\"]?\s*(?:=|:=|:)\s*)"
    r"(?P<secret>'[^']*'|\"[^\"]*\"|[^\s,;)}\]]+)",
    # Subscript assignment: os.environ["DB_PASSWORD"] = "x", config['token'] = x.
    r"(?i)(?P<pre>\[\s*['\"]" + _SECRET_NAME + r"['\"]\s*\]\s*=\s*)"
    r"(?P<secret>'[^']*'|\"[^\"]*\"|[^\s,;)}\]]+)",
    # Command-line options: --password VALUE, --token=VALUE, -p VALUE is too ambiguous to touch.
    r"(?i)(?P<pre>--" + _SECRET_NAME + r"(?:\s+|=))(?P<secret>'[^']*'|\"[^\"]*\"|[^\s-][^\s]*)",
    # Keyword arguments and dict items: password="x", {'token': 'x'} (covered above) and
    # mysql -pSECRET style glued passwords.
    r"(?P<pre>\bmysql(?:dump)?\b[^\n]*?\s-p)(?P<secret>[^\s]+)",
    # Well-known token shapes, wherever they appear.
    r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",  # AWS access key id
    r"(?P<secret>\bgh[pousr]_[A-Za-z0-9]{36,}\b)",  # GitHub tokens
    r"(?P<secret>\bxox[abposr]-[A-Za-z0-9-]{10,}\b)",  # Slack tokens
    r"(?P<secret>\bsk-[A-Za-z0-9_-]{20,}\b)",  # API keys of the sk-... family
    r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b)",  # JWTs
    r"(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))",
)


class Redactor:
    """Replace secrets in text with ``MARK``; ``redact`` returns (text, redacted?)."""

    def __init__(self, extra_patterns: Iterable[str] = (), *, use_defaults: bool = True,
                 mark: str = MARK) -> None:
        self.mark = mark
        sources = list(DEFAULT_PATTERNS if use_defaults else ()) + [p for p in extra_patterns if p]
        self.patterns: list[re.Pattern[str]] = []
        for src in sources:
            try:
                self.patterns.append(re.compile(src))
            except re.error:
                continue  # a bad user pattern must not break the shell

    def _sub(self, m: re.Match[str]) -> str:
        groups = m.re.groupindex
        if "secret" not in groups or m.group("secret") is None:
            return self.mark
        start, end = m.span("secret")
        whole_start = m.start()
        text = m.group(0)
        return text[: start - whole_start] + self.mark + text[end - whole_start:]

    def redact(self, text: str) -> tuple[str, bool]:
        out = text
        for pat in self.patterns:
            out = pat.sub(self._sub, out)
        return out, out != text


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
