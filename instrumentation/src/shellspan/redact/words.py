"""Words (a value and where each of its characters sits in the text) and the named-value rule.

Every rule finds secrets in a word's *value* (quotes and escapes resolved) and turns them back
into a span of the original text with ``Word.span``, so the rest of the text is kept byte for byte.
A secret that fills a whole word, or a whole quoted part of one, takes its quotes with it:
``-p 'a b'`` becomes ``-p [REDACTED]``, ``-u 'admin:pw'`` becomes ``-u 'admin:[REDACTED]'``.
"""

from __future__ import annotations

import re

from shellspan.redact.names import AUTH_SCHEMES, is_secret_name, is_secret_value

Span = tuple[int, int]


class Word:
    """One word: ``value`` as the program sees it, ``raw`` as typed at ``start``..``end``.

    Where each value character was typed: from ``at`` (the text index of ``value[0]`` when the
    value is typed as is: a plain word, one quoted string) or from ``starts``/``ends`` (per
    character; an escape covers its backslash). With neither, only the whole word can be redacted.
    """

    __slots__ = ("value", "raw", "start", "end", "at", "starts", "ends")

    def __init__(self, value: str, raw: str, start: int, *, at: int | None = None,
                 starts: list[int] | None = None, ends: list[int] | None = None) -> None:
        self.value, self.raw, self.start, self.end = value, raw, start, start + len(raw)
        self.at, self.starts, self.ends = at, starts, ends

    def __repr__(self) -> str:
        return f"Word({self.value!r} @{self.start})"

    def typed(self, a: int, b: int) -> Span | None:
        """Where ``value[a:b]`` (non-empty) was typed, if known."""
        if self.at is not None:
            return self.at + a, self.at + b
        if self.starts is not None:
            return self.starts[a], self.ends[b - 1]
        return None

    def span(self, a: int, b: int | None = None) -> Span | None:
        """The text span of ``value[a:b]``, or None when that part is not a secret."""
        v = self.value
        b = len(v) if b is None else b
        if a >= b or not is_secret_value(v[a:b]):
            return None
        typed = None if a == 0 and b == len(v) else self.typed(a, b)
        if typed is None:
            return self.start, self.end
        s, e = typed
        if self.starts is not None:
            i, j = s - self.start, e - self.start
            raw = self.raw
            if i > 0 and j < len(raw) and raw[i - 1] in "'\"" and raw[j] == raw[i - 1] and (
                    a == 0 or self.ends[a - 1] <= s - 1) and (b == len(v) or self.starts[b] > e):
                s, e = s - 1, e + 1  # the secret fills a quoted part: its quotes go too
        return s, e


# name=value, name: value, "name": "value" inside a word's value (query strings, conninfo,
# mount options, -e NAME=value, JSON or YAML text, HTTP headers).
_PAIR = re.compile(r"""
    (?<![\w.\-$])(?P<q>["']?)(?P<name>[A-Za-z_][\w.\-]*)(?P=q)
    (?P<sep>=(?!=)|\s*:(?=\s)|(?<=["'])\s*:|\s*=(?=\s*["']))
""", re.X)
_PLAIN_VALUE = re.compile(r"""[^\s'"`,;&|<>(){}]+""")
_SPACES = re.compile(r"[ \t]*")


def _quoted_end(v: str, i: int) -> int:
    """End (exclusive) of the quoted string starting at ``v[i]``; the end of ``v`` if unclosed."""
    q = v[i]
    j = i + 1
    while j < len(v):
        c = v[j]
        if c == "\\" and q == '"':
            j += 2
            continue
        if c == q:
            return j + 1
        j += 1
    return len(v)


def _after_scheme(v: str, i: int) -> int:
    """Index after ``Scheme `` when ``v[i:]`` starts with an auth scheme word, else ``i``."""
    m = re.match(r"([A-Za-z][\w-]*)[ \t]+", v[i:])
    if m and m.group(1).lower() in AUTH_SCHEMES:
        return i + m.end()
    return i


def pair_spans(word: Word, assignment: bool = False) -> list[Span]:
    """Secrets of ``name=value``/``name: value`` pairs with a secret-looking name in ``word``.

    ``assignment``: the word is a shell assignment (``export TOKEN=...``, ``TOKEN=... cmd``), so
    the value is everything after the first ``=``.
    """
    v = word.value
    out: list[Span] = []
    if "=" not in v and ":" not in v:
        return out
    pos = 0
    while True:
        m = _PAIR.search(v, pos)
        if m is None:
            return out
        pos = max(m.end(), pos + 1)
        if not is_secret_name(m.group("name")):
            continue
        i = m.end()
        colon = ":" in m.group("sep")
        if colon:
            i = _SPACES.match(v, i).end()
        if i >= len(v):
            continue
        if assignment and m.start() == 0 and not colon:
            a, b = i, len(v)
        elif v[i] in "'\"":
            a, b = i, _quoted_end(v, i)
        elif colon and not m.group("q"):
            # A header or YAML line: the value runs to the end of the line, after any scheme.
            a = _after_scheme(v, i)
            nl = v.find("\n", a)
            b = len(v.rstrip()) if nl < 0 else len(v[:nl].rstrip())
        else:
            a = _after_scheme(v, i) if colon else i
            pm = _PLAIN_VALUE.match(v, a)
            if pm is None or v.startswith("(", pm.end()):
                continue  # nothing, or a call: password=getpass()
            b = pm.end()
        span = word.span(a, b)
        if span:
            out.append(span)
            pos = max(pos, b)
