"""Secrets recognisable anywhere, whatever the language: URL userinfo, bearer tokens, well-known
token shapes and private key blocks. One scan of the raw text each, no parsing."""

from __future__ import annotations

import re

from shellspan.redact.names import is_secret_value
from shellspan.redact.words import Span

# scheme://userinfo@host: the userinfo runs to the last @ before the path, query or fragment.
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*)://([^\s/?#'\"<>`\\]*)@")
# Schemes where a user name alone is how a token is passed (https://<token>@github.com/...).
_TOKEN_USER_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "ftps"})

# As HTTP clients write it; other spellings and other schemes are found in headers
# (``Authorization: bearer x``) by the named-value rule.
_BEARER = re.compile(r"\b(?:Bearer|BEARER)[ \t]+([A-Za-z0-9\-._~+/]+=*)(?![A-Za-z0-9\-._~+/=(])")

_TOKEN_SHAPES = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|\bglpat-[A-Za-z0-9_\-]{20,}"  # GitLab
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\bsk-[A-Za-z0-9_\-]{20,}|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # OpenAI-style, Stripe
    r"|\bAIza[0-9A-Za-z_\-]{35}\b"  # Google API key
    r"|\bnpm_[A-Za-z0-9]{36}\b|\bhf_[A-Za-z0-9]{30,}\b"  # npm, Hugging Face
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWT
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
)
# Each shape starts with one of these: the regex runs only when one is present.
_SHAPE_PREFIXES = ("AKIA", "ASIA", "gh", "glpat-", "xox", "sk-", "k_live_", "k_test_", "AIza",
                   "npm_", "hf_", "eyJ", "-----BEGIN")


_ANY_SHAPE = re.compile("|".join(map(re.escape, ("Bearer", "BEARER", *_SHAPE_PREFIXES))))


def may_find(text: str) -> bool:
    """False when ``text_spans`` finds nothing in any part of ``text`` (one scan)."""
    return ("@" in text and "://" in text) or _ANY_SHAPE.search(text) is not None


def text_spans(text: str) -> list[Span]:
    out: list[Span] = []
    if "@" in text and "://" in text:
        for m in _URL_USERINFO.finditer(text):
            userinfo = m.group(2)
            start = m.start(2)
            user, colon, password = userinfo.partition(":")
            if colon:
                if is_secret_value(password):
                    out.append((start + len(user) + 1, m.end(2)))
            elif (m.group(1).lower().rpartition("+")[2] in _TOKEN_USER_SCHEMES
                  and is_secret_value(userinfo)):
                out.append((start, m.end(2)))
    if "Bearer" in text or "BEARER" in text:
        for m in _BEARER.finditer(text):
            if is_secret_value(m.group(1)):
                out.append(m.span(1))
    if any(p in text for p in _SHAPE_PREFIXES):
        out.extend(m.span() for m in _TOKEN_SHAPES.finditer(text))
    return out
