"""What counts as a secret name, a secret value and an auth scheme: the rules' shared vocabulary.

A name is secret-looking when its last word says so (``DB_PASSWORD``, ``apiKey``, ``x-auth-token``,
``PGPASSWORD``), not when the word appears anywhere in it: ``TOKEN_COUNT``, ``max_tokens``,
``password_file``, ``token_type``, ``PWD`` and ``OLDPWD`` are ordinary names. A leading verb
(``--ask-pass``, ``--no-password``, ``--with-token``) makes it a flag, not a holder of a secret.
"""

from __future__ import annotations

import re
from functools import lru_cache

MARK = "[REDACTED]"

# Last words that hold a secret on their own.
_SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "pass", "pw", "secret", "token", "apikey", "credential",
    "credentials", "creds", "authorization", "auth", "psk", "cookie", "community",
})
# Endings of one-word names (``PGPASSWORD``, ``authtoken``, ``clientsecret``).
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
                    "secretkey")
# ``key`` and ``pwd`` count only after a qualifier (``API_KEY``, ``MYSQL_PWD``; not ``PWD``).
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "auth", "session", "signing", "encryption", "master", "account",
    "app", "consumer", "storage", "subscription", "shared", "license", "sas", "webhook",
})
# A first word that makes the name a flag or an action rather than a holder of a secret.
_VERBS = frozenset({
    "ask", "no", "prompt", "with", "without", "show", "print", "require", "reset", "generate",
    "skip", "disable", "enable", "forget", "change", "read", "use", "keep", "allow", "verify",
    "check", "list", "delete", "remove", "revoke", "rotate", "create", "get", "validate", "is",
    "has", "need", "min", "max", "num", "count",
})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for a variable, key, option or header name whose value is a secret."""
    words = [w.lower() for w in _WORD_SPLIT.split(name) if w]
    if not words:
        return False
    if len(words) > 1 and words[0] in _VERBS:
        return False
    last = words[-1].rstrip("0123456789") or words[-1]
    if last in _SECRET_WORDS or last.endswith(_SECRET_SUFFIXES):
        return True
    if len(words) > 1 and (last == "pwd" or (last == "key" and words[-2] in _KEY_QUALIFIERS)):
        return True
    return False


# Every secret-looking name, and most rules, contain one of these (lower case): a line without any
# of them, nor a command named in the tool table, needs only the scan for URLs and token shapes.
TRIGGER_STEMS = ("pass", "pw", "secret", "token", "key", "auth", "cred", "psk", "cookie",
                 "community", "bearer", "login", "bind", "ftp", "<<<")

# Authorization schemes: what follows one of these words is the credential.
AUTH_SCHEMES = frozenset({
    "basic", "bearer", "digest", "negotiate", "ntlm", "token", "bot", "oauth", "apikey", "jwt",
    "hawk", "hoba", "mutual", "aws4-hmac-sha256", "sharedkey", "sharedkeylite",
    "sharedaccesssignature", "sso-key", "splunk", "key", "gssapi", "kerberos", "scram-sha-1",
    "scram-sha-256", "vapid", "privatetoken", "dpop",
})

# A value that names a secret rather than holding one: ``$TOKEN``, ``${TOKEN}``, ``$(pass show x)``,
# or a placeholder in a format string: ``%s``, ``%(token)s``, ``{}``, ``{token}``.
_REFERENCE = re.compile(r"\$(?:\w+|\{[^}]*\}|\([\s\S]*\))|`[^`]*`|%(?:\(\w+\))?[sdr]|\{\w*\}")


def is_secret_value(value: str) -> bool:
    """False for what needs no redaction: empty, a variable or command reference, or already
    redacted (so that redacting twice changes nothing)."""
    v = value.strip()
    return bool(v) and MARK not in v and _REFERENCE.fullmatch(v) is None
