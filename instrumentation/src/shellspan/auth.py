"""Bearer tokens for the OTLP endpoint, and who this process runs as.

A token comes from the first of these sources that works:

1. the host's token broker (``shellspan broker``, ``SHELLSPAN_BROKER_SOCKET``): the kernel tells
   it which uid is asking and it signs a short-lived token naming that uid's login name. The
   shell holds no secret, and nothing a child inherits can mint a token for anyone;
2. a ready token (``SHELLSPAN_AUTH_TOKEN``), sent as is;
3. a token minted here with the HS256 shared secret read from ``SHELLSPAN_AUTH_SECRET_FILE``, a
   file only its owner may read. Whoever can read that file can mint a token for any name.

``SHELLSPAN_AUTH_SECRET`` in the environment is ignored (every child process would inherit it),
with a warning once per process. Tokens are renewed at half their life, so a long session never
sends an expired one; when the broker cannot be reached, a token it gave stays in use until it
expires. The subject of every token is the login name of the process's uid from the password
database, never ``$USER``. Token work runs on the export thread (PyJWT is imported there);
``login_name()`` is cheap enough for the shell's own thread.
"""

from __future__ import annotations

import os
import stat
import sys
import time

AUDIENCE = "shellspan"
# Claims a token carries besides the registered ones: which host vouched, and for which uid.
CLAIM_HOST = "host"
CLAIM_UID = "uid"

# The broker's line protocol (one request, one reply, then the broker closes the connection).
BROKER_REQUEST = b"TOKEN\n"
BROKER_MAX_REPLY = 16384
BROKER_DISABLED = ("off", "none")
MIN_SECRET_BYTES = 32
MAX_SECRET_BYTES = 4096
BROKER_RETRY_S = 10.0  # after a failed broker request, other sources serve for this long

_warned: set[str] = set()


class TokenError(Exception):
    """A token source is misconfigured or unreachable (the message says which and why)."""


def login_name(uid: int | None = None) -> str:
    """The login name of ``uid`` (default: this process's effective uid) from the password
    database; the uid as a string when it has no entry. Never read from ``$USER``."""
    uid = os.geteuid() if uid is None else uid
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):  # no passwd entry (containers): the uid will do
        return str(uid)


def warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        try:
            sys.stderr.write(f"shellspan: {message}\n")
        except (OSError, ValueError):
            pass


def read_secret_file(path: str) -> str:
    """The shared secret in ``path``: a regular file no one but its owner may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise TokenError(f"cannot open the secret file {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TokenError(f"the secret file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise TokenError(f"the secret file {path} is open to group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):o}); refusing it: chmod 600 {path}")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    secret = data.strip()
    if len(data) > MAX_SECRET_BYTES or len(secret) < MIN_SECRET_BYTES:
        raise TokenError(f"the secret in {path} must be {MIN_SECRET_BYTES} to "
                         f"{MAX_SECRET_BYTES} bytes long")
    return secret.decode("utf-8", "surrogateescape")


def mint_token(secret: str, ttl_s: float = 300.0, *, now: float | None = None) -> str:
    """An HS256 JWT for this process's user: sub (login name of the uid), uid, host, iat, exp
    (now + ttl_s) and aud="shellspan"."""
    import jwt  # PyJWT; imported here so only the export thread pays for it

    iat = int(time.time() if now is None else now)
    uid = os.geteuid()
    claims = {"sub": login_name(uid), CLAIM_UID: uid, CLAIM_HOST: os.uname().nodename,
              "iat": iat, "exp": iat + int(ttl_s), "aud": AUDIENCE}
    return jwt.encode(claims, secret, algorithm="HS256")


def request_broker_token(path: str, timeout_s: float = 2.0) -> tuple[str, float]:
    """Ask the broker listening on ``path`` for a token: (token, seconds it lives)."""
    import socket

    try:
        st = os.stat(path)
    except OSError as exc:
        raise TokenError(f"no broker socket at {path}") from exc
    if not stat.S_ISSOCK(st.st_mode):
        raise TokenError(f"{path} is not a socket")
    if st.st_uid not in (0, os.geteuid()):  # someone else's socket: not the host's broker
        raise TokenError(f"the broker socket {path} belongs to uid {st.st_uid}, not root")
    reply = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # close-on-exec
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(BROKER_REQUEST)
            while not reply.endswith(b"\n") and len(reply) < BROKER_MAX_REPLY:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError as exc:
        raise TokenError(f"the broker at {path} did not answer: {exc}") from exc
    line = reply.decode("utf-8", "replace").strip()
    kind, _, rest = line.partition(" ")
    if kind == "OK":
        ttl, _, token = rest.partition(" ")
        try:
            return token.strip(), float(ttl)
        except ValueError:
            pass
    if kind == "ERR":
        raise TokenError(f"the broker refused: {rest}")
    raise TokenError(f"unexpected answer from the broker at {path}: {line[:80]!r}")


class TokenSource:
    """The current bearer token (or None), from the broker, a ready token or the secret file."""

    def __init__(self, *, broker_socket: str = "", token: str = "", secret_file: str = "",
                 ttl_s: float = 300.0, broker_timeout_s: float = 2.0) -> None:
        self.broker_socket = "" if broker_socket.lower() in BROKER_DISABLED else broker_socket
        self.token, self.secret_file, self.ttl_s = token, secret_file, ttl_s
        self.broker_timeout_s = broker_timeout_s
        self.source = ""  # where the current token came from: broker, token, secret
        self.last_error = ""
        self._cached: str | None = None
        self._renew_at = self._expires_at = self._broker_retry_at = 0.0

    @classmethod
    def from_config(cls, config) -> TokenSource:
        """The source a shell uses (``shellspan.config.Config``); warns about an environment
        secret, which is never used."""
        if config.auth_secret_in_env:
            warn_once("env-secret", "SHELLSPAN_AUTH_SECRET in the environment is ignored: every "
                      "program started from this shell would inherit it. Put the secret in a "
                      "file only you can read and name it in SHELLSPAN_AUTH_SECRET_FILE, or ask "
                      "your administrator for the host's token broker.")
        return cls(broker_socket=config.broker_socket, token=config.auth_token,
                   secret_file=config.auth_secret_file, ttl_s=config.auth_ttl_s)

    def get(self) -> str | None:
        now = time.monotonic()
        if self._cached is not None and now < self._renew_at:
            return self._cached
        if self.broker_socket and now >= self._broker_retry_at:
            try:
                token, ttl = request_broker_token(self.broker_socket, self.broker_timeout_s)
                return self._keep(token, "broker", now, ttl)
            except TokenError as exc:
                self.last_error = str(exc)
                self._broker_retry_at = now + BROKER_RETRY_S
        if self._cached is not None and self.source == "broker" and now < self._expires_at:
            return self._cached  # the broker is away for a moment: its token still serves
        if self.token:
            self.source = "token"
            return self.token
        if self.secret_file:
            try:
                token = mint_token(read_secret_file(self.secret_file), self.ttl_s)
                return self._keep(token, "secret", now, self.ttl_s)
            except TokenError as exc:
                self.last_error = str(exc)
                warn_once("secret-file", str(exc))
            except Exception as exc:  # noqa: BLE001 - no token rather than a broken shell
                self.last_error = f"cannot mint a token: {exc!r}"
        self._cached, self.source = None, ""
        return None

    def _keep(self, token: str, source: str, now: float, ttl: float) -> str:
        self._cached, self.source = token, source
        self._renew_at = now + ttl / 2
        self._expires_at = now + max(ttl - 5.0, ttl / 2)
        return token

    def header(self) -> dict[str, str]:
        tok = self.get()
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def describe(self) -> str:
        """One line for ``shellspan status``: where tokens come from now (asks for one)."""
        token = self.get()
        if token is None:
            return f"none ({self.last_error})" if self.last_error else "none"
        if self.source == "broker":
            return f"broker at {self.broker_socket} (tokens for {login_name()})"
        if self.source == "token":
            note = f"; broker: {self.last_error}" if self.last_error else ""
            return f"ready token (SHELLSPAN_AUTH_TOKEN){note}"
        return (f"minted from the shared secret in {self.secret_file} (for {login_name()}; "
                "whoever can read that file can claim any identity)")
