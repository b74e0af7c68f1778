"""Who sent this: JWT verification for OTLP in, and scoped access to the API.

Keys (``config`` reads the variables): an HS256 shared secret (``SHELLSPAN_AUTH_SECRET`` in the sink's own environment, or
``SHELLSPAN_AUTH_SECRET_FILE``), RS256/ES256 public keys in PEM files
(``SHELLSPAN_AUTH_PUBLIC_KEYS``, comma-separated: each host broker's ``*.pub.pem``) and a JWKS
file (``SHELLSPAN_AUTH_JWKS``, keys chosen by ``kid``). Only the algorithms of configured keys
are accepted, so ``alg: none`` and algorithm confusion fail. ``exp``, ``nbf``, ``iat``, ``aud``
and (if set) ``iss`` are checked with a small leeway; claims of the wrong type are refused with
a message saying which, and no token may live longer than ``SHELLSPAN_AUTH_MAX_LIFETIME``
(``exp - iat``; without ``iat``, ``exp`` may not lie further ahead than that).

Modes (``SHELLSPAN_AUTH_MODE``): ``required`` rejects a missing or bad token; ``optional`` accepts
a missing token (the session is stored unverified) but still rejects a bad one; ``off`` ignores
tokens. The default is ``optional`` when a key is configured, else ``off``.

On an accepted request's spans the sink stamps the subject (``enduser.id``), that it was verified,
the host the token names (its ``host`` claim, set by a host's broker) and the RFC 7638 thumbprint
of the public key that verified it: root on a host can name any host, not sign with another's key.

Scopes (the ``scope`` claim, a space-separated string or a list): ``sessions:read`` for the API
and UI, ``sessions:sql`` for SQL (not implied by ``sessions:read``), ``sessions:annotate`` for
annotations, ``sessions:audit`` for the access log. A shell's token carries none of them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shellspan import semconv
from shellspan.auth import CLAIM_HOST, CLAIM_UID, TokenError, read_secret_file
from shellspan.broker import key_thumbprint

MODES = ("required", "optional", "off")
READ_SCOPE = "sessions:read"
SQL_SCOPE = "sessions:sql"
ANNOTATE_SCOPE = "sessions:annotate"  # add tags and notes to sessions
AUDIT_SCOPE = "sessions:audit"  # read the access log: who read which session
SCOPES = (READ_SCOPE, SQL_SCOPE, ANNOTATE_SCOPE, AUDIT_SCOPE)
ANONYMOUS = "anonymous"  # who a request is when authentication is off
DEFAULT_MAX_LIFETIME_S = 86400.0
MAX_SUBJECT_CHARS = 256
_NUMERIC_DATES = ("exp", "iat", "nbf")
_STRING_CLAIMS = ("iss", "jti", CLAIM_HOST)


class AuthError(Exception):
    """The request's credentials are missing or invalid (HTTP 401 / gRPC UNAUTHENTICATED)."""


@dataclass
class AuthConfig:
    mode: str | None = None
    secret: str | None = None
    secret_file: str | None = None
    public_key_files: list[str] = field(default_factory=list)
    jwks_file: str | None = None
    audience: str | None = "shellspan"
    issuer: str | None = None
    leeway: float = 30.0
    max_lifetime: float = DEFAULT_MAX_LIFETIME_S


class Verifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        if not config.max_lifetime > 0:
            raise ValueError("SHELLSPAN_AUTH_MAX_LIFETIME must be a positive number of seconds")
        # (algorithms, key, kid) candidates; a token must verify against one of them.
        self._keys: list[tuple[list[str], object, str | None]] = []
        secret = config.secret
        if config.secret_file:
            if secret:
                raise ValueError("set SHELLSPAN_AUTH_SECRET or SHELLSPAN_AUTH_SECRET_FILE, not both")
            try:
                secret = read_secret_file(config.secret_file)
            except TokenError as exc:
                raise ValueError(str(exc)) from exc
        if secret:
            self._keys.append((["HS256"], secret, None))
        for path in config.public_key_files:
            self._keys.append(_pem_key(Path(path)))
        if config.jwks_file:
            self._keys.extend(_jwks_keys(Path(config.jwks_file)))
        # Which public key vouched, by thumbprint (never by a kid the token or JWKS names).
        self._key_ids = {id(key): key_thumbprint(key) for algs, key, _ in self._keys
                         if algs != ["HS256"]}
        mode = config.mode or ("optional" if self._keys else "off")
        if mode not in MODES:
            raise ValueError(f"SHELLSPAN_AUTH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != "off" and not self._keys:
            raise ValueError(f"auth mode {mode!r} needs a key: set SHELLSPAN_AUTH_SECRET(_FILE), "
                             "SHELLSPAN_AUTH_PUBLIC_KEYS or SHELLSPAN_AUTH_JWKS")
        self.mode = mode

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def claims(self, authorization: str | None) -> dict | None:
        """The verified claims, or None when there is no token. Raises AuthError for anything
        else, whatever the token holds."""
        verified = self._verify(authorization)
        return verified[0] if verified else None

    def _verify(self, authorization: str | None) -> tuple[dict, object] | None:
        """(claims, the key that verified them), or None when there is no token."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            _check_types(jwt.decode(token, options={"verify_signature": False}))
        except AuthError:
            raise
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
            raise AuthError(f"malformed token: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or not (kid is None or isinstance(kid, str)):
            raise AuthError("malformed token: its header's alg and kid must be strings")
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
            except jwt.InvalidSignatureError as exc:
                error = exc  # maybe another key of the same algorithm
                continue
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                raise AuthError(f"invalid token: {exc}") from exc
            self._check_lifetime(claims)
            return claims, key
        raise AuthError(f"invalid token: {error}")

    def _check_lifetime(self, claims: dict) -> None:
        limit = self.config.max_lifetime
        if "iat" in claims:
            lifetime = claims["exp"] - claims["iat"]
            if lifetime > limit:
                raise AuthError(f"the token lives {lifetime:.0f} s (exp - iat), longer than the "
                                f"{limit:.0f} s allowed (SHELLSPAN_AUTH_MAX_LIFETIME)")
        elif claims["exp"] - time.time() > limit + self.config.leeway:
            raise AuthError(f"the token has no iat and expires more than {limit:.0f} s from now "
                            "(SHELLSPAN_AUTH_MAX_LIFETIME)")

    def identity(self, authorization: str | None) -> dict[str, str] | None:
        """Attributes the sink stamps on every span of the request (None: nothing to stamp)."""
        if not self.enabled:
            return None
        verified = self._verify(authorization)
        if verified is None:
            if self.mode == "required":
                raise AuthError("a bearer token is required")
            return None  # optional: accepted, stored unverified
        claims, key = verified
        stamped = {semconv.ENDUSER_ID: claims["sub"], semconv.AUTH_VERIFIED: "true"}
        if claims.get(CLAIM_HOST):
            stamped[semconv.AUTH_HOST] = claims[CLAIM_HOST]
        if key_id := self._key_ids.get(id(key)):
            stamped[semconv.AUTH_KEY_ID] = key_id
        return stamped

    def check_scope(self, authorization: str | None, scope: str) -> None:
        """Access that needs ``scope`` (one of SCOPES): a valid token whose scope claim names it.
        Nothing is checked with auth off."""
        if not self.enabled:
            return
        claims = self.claims(authorization)
        if claims is None:
            raise AuthError(f"a bearer token with the {scope!r} scope is required")
        if scope not in _scopes(claims):
            raise AuthError(f"the token's scope does not include {scope!r}")

    def subject(self, authorization: str | None) -> tuple[str, bool]:
        """(who, verified) for a request already let through: the token's subject, or
        ``anonymous`` (not verified) with auth off or no token."""
        if not self.enabled:
            return ANONYMOUS, False
        claims = self.claims(authorization)
        return (str(claims["sub"]), True) if claims else (ANONYMOUS, False)


def _scopes(claims: dict) -> list[str]:
    scope = claims.get("scope", "")
    return scope.split() if isinstance(scope, str) else list(scope)


def _check_types(claims: object) -> None:
    """Refuse claims of the wrong type with a message naming them (PyJWT lets some through:
    a numeric string for exp, a boolean for iat, a number for iss or scope)."""
    if not isinstance(claims, dict):
        raise AuthError("malformed token: its payload is not a JSON object")
    for name in _NUMERIC_DATES:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))
                               or not math.isfinite(value)):
            raise AuthError(f"the token's {name} claim must be a number of seconds, "
                            f"not {type(value).__name__}")
    if "sub" in claims:
        sub = claims["sub"]
        if not isinstance(sub, str):
            raise AuthError(f"the token's subject (sub) must be a string, not {type(sub).__name__}")
        if not sub.strip() or len(sub) > MAX_SUBJECT_CHARS or not sub.isprintable():
            raise AuthError(f"the token's subject (sub) must be 1 to {MAX_SUBJECT_CHARS} "
                            "printable characters")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise AuthError(f"the token's {name} claim must be a string, "
                            f"not {type(claims[name]).__name__}")
    for name in ("aud", "scope"):
        value = claims.get(name)
        if name in claims and not (isinstance(value, str) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise AuthError(f"the token's {name} claim must be a string or a list of strings")
    uid = claims.get(CLAIM_UID)
    if CLAIM_UID in claims and (isinstance(uid, bool) or not isinstance(uid, int)):
        raise AuthError(f"the token's {CLAIM_UID} claim must be a whole number")


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
