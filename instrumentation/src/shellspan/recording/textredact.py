"""Redaction of terminal text that arrives in chunks.

A secret can be cut across two reads of a terminal (``tok`` in one chunk, ``en=abc...`` in the
next), and each chunk is its own record with its own time, so chunks cannot be joined. Instead
the redactor runs over whole lines of the stream and its findings are mapped back onto the
chunks: a chunk is held until every line it touches is complete (a newline came), then released
with the marker where each secret starts and the rest of the secret removed (in whichever chunk
it lies). Holding is bounded: beyond ``max_chars`` held, after ``max_age_s``, at a change of
command and at the end, everything held is released, the unfinished line redacted as it is.

Terminal text holds escape sequences (colours, cursor moves) that can fall inside a secret or
between a name and its value (``grep --color password``); each line is matched without them
(``visible``) and the findings mapped back to the raw text, so the marker replaces the secret
and what was drawn inside it.
"""

from __future__ import annotations

import re

from shellspan.redact import MARK, Redactor

Span = tuple[int, int]
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, and the other C0
# controls but newline and tab.
_CONTROLS = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                       r"|\x1b[@-_ -/]?[0-~]?|[\x00-\x08\x0b-\x1f\x7f]")
_PROMPT_END = re.compile(r"[$#%>] ")
PROMPT_MAX = 200  # a prompt is looked for this far into a line


def visible(line: str) -> tuple[str, list[int] | None]:
    """The line without escape sequences and control characters, and for each character kept
    its index in ``line`` (None when nothing was removed)."""
    if not _CONTROLS.search(line):
        return line, None
    kept: list[str] = []
    where: list[int] = []
    pos = 0
    for m in _CONTROLS.finditer(line):
        kept.append(line[pos:m.start()])
        where.extend(range(pos, m.start()))
        pos = m.end()
    kept.append(line[pos:])
    where.extend(range(pos, len(line)))
    return "".join(kept), where


def block_spans(block: str, redactor: Redactor) -> list[Span]:
    """Where secrets are in complete lines of terminal text (raw indices), each line matched
    without its escape sequences. Lines without any word the rules start from cost nothing."""
    if not redactor.may_find(_CONTROLS.sub("", block)):
        return []
    text, where = visible(block)
    spans: list[Span] = []
    pos = 0
    for line in text.split("\n"):
        if line:
            spans.extend((pos + s, pos + e) for s, e in redactor.spans(line) if e > s)
            # A command line echoed after a prompt is also read without the prompt, so the
            # rules for commands see the command (``$ mysql -psecret``).
            prompt = _PROMPT_END.search(line, 0, PROMPT_MAX)
            if prompt is not None:
                at = pos + prompt.end()
                spans.extend((at + s, at + e) for s, e in redactor.spans(line[prompt.end():])
                             if e > s)
        pos += len(line) + 1
    if where is None or not spans:
        return spans
    return [(where[s], where[e - 1] + 1) for s, e in spans]


class Held:
    __slots__ = ("text", "start", "payload")

    def __init__(self, text: str, start: int, payload: object) -> None:
        self.text, self.start, self.payload = text, start, payload


class StreamRedactor:
    """Redacts one stream of terminal text chunk by chunk (see the module's docstring).

    ``add`` and ``release`` return the chunks released, in order, as (payload, redacted text,
    whether anything was redacted)."""

    def __init__(self, redactor: Redactor, *, max_chars: int = 65536) -> None:
        self.redactor = redactor
        self.max_chars = max_chars
        self.held: list[Held] = []
        self.text = ""  # the held chunks' text, joined
        self.base = 0  # absolute offset of ``text``
        self.scanned = 0  # absolute offset up to which lines have been looked at
        self.spans: list[Span] = []  # absolute, merged, not yet applied
        self.held_since = 0.0

    def add(self, text: str, payload: object, now: float = 0.0) -> list[tuple[object, str, bool]]:
        if not self.held:
            self.held_since = now
        self.held.append(Held(text, self.base + len(self.text), payload))
        self.text += text
        end = self.base + len(self.text)
        if len(self.text) > self.max_chars:
            return self.release()
        last_newline = self.text.rfind("\n", self.scanned - self.base)
        if last_newline < 0:
            return []
        self._scan(self.base + last_newline + 1)
        # Chunks whose every line was looked at can go.
        done = 0
        while done < len(self.held) and self.held[done].start + len(self.held[done].text) \
                <= self.scanned:
            done += 1
        if done == len(self.held) and self.scanned == end:
            return self.release()
        return self._pop(done)

    def release(self) -> list[tuple[object, str, bool]]:
        """Everything held, the unfinished line redacted as it is."""
        self._scan(self.base + len(self.text))
        return self._pop(len(self.held))

    def _scan(self, upto: int) -> None:
        """Find secrets in the lines from ``scanned`` to ``upto`` (absolute)."""
        start = self.scanned
        if upto <= start:
            return
        block = self.text[start - self.base:upto - self.base]
        found = [(start + s, start + e) for s, e in block_spans(block, self.redactor)]
        if found:
            spans = sorted(self.spans + found)
            merged: list[list[int]] = []
            for s, e in spans:
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            self.spans = [(s, e) for s, e in merged]
        self.scanned = upto

    def _pop(self, count: int) -> list[tuple[object, str, bool]]:
        if not count:
            return []
        out = []
        gone, self.held = self.held[:count], self.held[count:]
        for h in gone:
            out.append(self._apply(h))
        cut = sum(len(h.text) for h in gone)
        self.text = self.text[cut:]
        self.base += cut
        self.spans = [sp for sp in self.spans if sp[1] > self.base]
        return out

    def _apply(self, h: Held) -> tuple[object, str, bool]:
        cs, ce = h.start, h.start + len(h.text)
        parts: list[str] = []
        pos = cs
        redacted = False
        for s, e in self.spans:
            if min(e, ce) <= max(s, cs):  # not in this chunk
                continue
            redacted = True
            if s >= cs:  # the secret starts here: the marker stands where it starts
                parts.append(h.text[pos - cs:s - cs])
                parts.append(MARK)
            else:
                parts.append(h.text[pos - cs:max(s, pos) - cs])
            pos = min(e, ce)
        if not redacted:
            return h.payload, h.text, False
        parts.append(h.text[pos - cs:])
        return h.payload, "".join(parts), True

    def age(self, now: float) -> float:
        """How long the oldest held chunk has waited (0 when nothing is held)."""
        return now - self.held_since if self.held else 0.0
