"""Bearer tokens for the OTLP endpoint.

``SHELLSPAN_AUTH_TOKEN`` is sent as is. With ``SHELLSPAN_AUTH_SECRET`` (an HS256 shared secret,
the same variable the sink verifies with) a short-lived JWT is minted and renewed before it
expires, so a long session never sends an expired token. Without either, no header is sent and
the shell carries on. Minting runs on the export thread (PyJWT is imported there, not at start).
"""

from __future__ import annotations

import os
import time

AUDIENCE = "shellspan"


def login_name() -> str:
    """The user a shell runs as: $USER (or LOGNAME, USERNAME), else the password database."""
    for var in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except Exception:  # noqa: BLE001 - no passwd entry (containers): the uid will do
        return str(os.getuid())


def mint_token(secret: str, subject: str, ttl_s: float = 300.0, *, now: float | None = None,
               extra_claims: dict | None = None) -> str:
    """An HS256 JWT with claims sub, iat, exp (now + ttl_s) and aud="shellspan"."""
    import jwt  # PyJWT; imported here so only the export thread pays for it

    iat = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": iat, "exp": iat + int(ttl_s), "aud": AUDIENCE}
    if extra_claims:
        claims.update(extra_claims)
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenSource:
    """Returns the current bearer token (or None), minting a new one when half its life is gone."""

    def __init__(self, *, secret: str = "", token: str = "", subject: str = "",
                 ttl_s: float = 300.0) -> None:
        # A token always names someone: processes that resend a spool (no session at hand)
        # mint for the user they run as.
        self.secret, self.token, self.ttl_s = secret, token, ttl_s
        self.subject = subject or login_name()
        self._cached: str | None = None
        self._renew_at = 0.0

    def get(self) -> str | None:
        if self.token:
            return self.token
        if not self.secret:
            return None
        now = time.time()
        if self._cached is None or now >= self._renew_at:
            try:
                self._cached = mint_token(self.secret, self.subject, self.ttl_s, now=now)
                self._renew_at = now + self.ttl_s / 2
            except Exception:  # noqa: BLE001 - no token rather than a broken shell
                self._cached = None
        return self._cached

    def header(self) -> dict[str, str]:
        tok = self.get()
        return {"Authorization": f"Bearer {tok}"} if tok else {}
