"""Who sent this: JWT verification for OTLP in, and read access for the API.

Keys (``config`` reads the variables): an HS256 shared secret (``SHELLSPAN_AUTH_SECRET``, the one
the shell side mints with), RS256/ES256 public keys in PEM files (``SHELLSPAN_AUTH_PUBLIC_KEYS``,
comma-separated) and a JWKS file (``SHELLSPAN_AUTH_JWKS``). Only the algorithms of configured keys are accepted, so
``alg: none`` and algorithm confusion fail. ``exp``, ``nbf``, ``iat``, ``aud`` and (if set)
``iss`` are checked with a small leeway.

Modes (``SHELLSPAN_AUTH_MODE``): ``required`` rejects a missing or bad token; ``optional`` accepts
a missing token (the session is stored unverified) but still rejects a bad one; ``off`` ignores
tokens. The default is ``optional`` when a key is configured, else ``off``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shellspan import semconv

MODES = ("required", "optional", "off")
READ_SCOPE = "sessions:read"
ANNOTATE_SCOPE = "sessions:annotate"  # add tags and notes to sessions
AUDIT_SCOPE = "sessions:audit"  # read the access log: who read which session
ANONYMOUS = "anonymous"  # who a request is when authentication is off


class AuthError(Exception):
    """The request's credentials are missing or invalid (HTTP 401 / gRPC UNAUTHENTICATED)."""


@dataclass
class AuthConfig:
    mode: str | None = None
    secret: str | None = None
    public_key_files: list[str] = field(default_factory=list)
    jwks_file: str | None = None
    audience: str | None = "shellspan"
    issuer: str | None = None
    leeway: float = 30.0


class Verifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        # (algorithms, key, kid) candidates; a token must verify against one of them.
        self._keys: list[tuple[list[str], object, str | None]] = []
        if config.secret:
            self._keys.append((["HS256"], config.secret, None))
        for path in config.public_key_files:
            self._keys.append(_pem_key(Path(path)))
        if config.jwks_file:
            self._keys.extend(_jwks_keys(Path(config.jwks_file)))
        mode = config.mode or ("optional" if self._keys else "off")
        if mode not in MODES:
            raise ValueError(f"SHELLSPAN_AUTH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != "off" and not self._keys:
            raise ValueError(f"auth mode {mode!r} needs a key: set SHELLSPAN_AUTH_SECRET, "
                             "SHELLSPAN_AUTH_PUBLIC_KEYS or SHELLSPAN_AUTH_JWKS")
        self.mode = mode

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def claims(self, authorization: str | None) -> dict | None:
        """The verified claims, or None when there is no token. Raises AuthError."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        candidates = [(algs, key) for algs, key, key_id in self._keys
                      if alg in algs and (kid is None or key_id is None or key_id == kid)]
        if not candidates:
            raise AuthError(f"token algorithm {alg!r} (kid {kid!r}) matches no configured key")
        error: Exception | None = None
        for algorithms, key in candidates:
            try:
                claims = jwt.decode(
                    token, key, algorithms=algorithms, audience=self.config.audience,
                    issuer=self.config.issuer, leeway=self.config.leeway,
                    options={"require": ["exp", "sub"], "verify_aud": self.config.audience is not None})
                if not isinstance(claims["sub"], str) or not claims["sub"].strip():
                    raise AuthError("the token's subject (sub) is empty")
                return claims
            except jwt.InvalidSignatureError as exc:
                error = exc  # maybe another key of the same algorithm
            except jwt.PyJWTError as exc:
                raise AuthError(f"invalid token: {exc}") from exc
        raise AuthError(f"invalid token: {error}")

    def identity(self, authorization: str | None) -> dict[str, str] | None:
        """Attributes the sink stamps on every span of the request (None: nothing to stamp)."""
        if not self.enabled:
            return None
        claims = self.claims(authorization)
        if claims is None:
            if self.mode == "required":
                raise AuthError("a bearer token is required")
            return None  # optional: accepted, stored unverified
        return {semconv.ENDUSER_ID: str(claims["sub"]), semconv.AUTH_VERIFIED: "true"}

    def check_read(self, authorization: str | None) -> None:
        """Read access to the API and UI data: a valid token whose scope includes sessions:read."""
        self.check_scope(authorization, READ_SCOPE)

    def check_scope(self, authorization: str | None, scope: str) -> None:
        """Access that needs ``scope``: a valid token whose scope claim names it. Nothing is
        checked with auth off."""
        if not self.enabled:
            return
        claims = self.claims(authorization)
        if claims is None:
            raise AuthError(f"a bearer token with the {scope!r} scope is required")
        granted = claims.get("scope", "")
        if scope not in (granted.split() if isinstance(granted, str) else list(granted)):
            raise AuthError(f"the token's scope does not include {scope!r}")

    def subject(self, authorization: str | None) -> tuple[str, bool]:
        """(who, verified) for a request already let through: the token's subject, or
        ``anonymous`` (not verified) with auth off or no token."""
        if not self.enabled:
            return ANONYMOUS, False
        claims = self.claims(authorization)
        return (str(claims["sub"]), True) if claims else (ANONYMOUS, False)


def _pem_key(path: Path) -> tuple[list[str], object, None]:
    pem = path.read_bytes()
    if b"BEGIN EC PUBLIC KEY" in pem or _is_ec(pem):
        return ["ES256"], ECAlgorithm(ECAlgorithm.SHA256).prepare_key(pem), None
    return ["RS256"], RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem), None


def _is_ec(pem: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return isinstance(load_pem_public_key(pem), ec.EllipticCurvePublicKey)


def _jwks_keys(path: Path) -> list[tuple[list[str], object, str | None]]:
    doc = json.loads(path.read_text())
    keys = []
    for jwk in doc.get("keys", []):
        kty = jwk.get("kty")
        if kty == "RSA":
            keys.append((["RS256"], RSAAlgorithm.from_jwk(jwk), jwk.get("kid")))
        elif kty == "EC":
            keys.append((["ES256"], ECAlgorithm.from_jwk(jwk), jwk.get("kid")))
        elif kty == "oct":
            keys.append((["HS256"], jwt.utils.base64url_decode(jwk["k"]), jwk.get("kid")))
    if not keys:
        raise ValueError(f"{path}: no RSA, EC or oct keys")
    return keys
