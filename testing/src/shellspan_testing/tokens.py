"""Bearer tokens for tests: HS256 JWTs as an identity provider would issue them."""

from __future__ import annotations

import time

import jwt


def mint(secret: str, sub: str, scope: str = "", lifetime: float = 3600, **claims) -> str:
    """A token for `sub` with `scope` (space-separated), audience ``shellspan``, signed with
    `secret`, valid for `lifetime` seconds from now."""
    now = int(time.time())
    payload = {"sub": sub, "aud": "shellspan", "iat": now, "exp": now + int(lifetime),
               "scope": scope, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
