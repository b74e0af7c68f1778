"""``shellspan broker``: the host's token broker, a root service that vouches for local users.

A shell (or its agent) connects to the broker's Unix socket and asks for a token. The kernel
tells the broker which uid is calling (``SO_PEERCRED``); the broker answers with a short-lived
JWT whose ``sub`` is that uid's login name from the password database, with the host name and
the uid as claims, signed with the host's private key (ES256 by default, RS256 possible). Nothing
the caller sends chooses the identity, and a shell keeps nothing that could mint a token.

Protocol: one request line per connection, at most ``MAX_REQUEST`` bytes: ``TOKEN`` (any words
after it are ignored). The reply is one line, ``OK <seconds> <jwt>`` or ``ERR <reason>``, then
the broker closes the connection. Each connection has a deadline, and each uid a bounded number
of open connections, so a slow or hostile client cannot hold up anyone else.

Keys: the private key (PEM, PKCS#8) must be owned by the broker's user and readable by it alone;
it is created on first start (or by ``shellspan broker keygen``). Its public half is written
beside it as PEM (``*.pub.pem``) and as a JWKS (``*.jwks.json``) whose ``kid`` is the key's
RFC 7638 thumbprint, for sinks to trust. Needs ``cryptography`` (``pip install
'shellspan[broker]'``); the shells themselves do not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shellspan.auth import AUDIENCE, CLAIM_HOST, CLAIM_UID, TokenError, request_broker_token
from shellspan.config import DEFAULT_BROKER_SOCKET, _env_float
from shellspan.files import replace_file

DEFAULT_KEY = "/etc/shellspan/broker.key"
ALGORITHMS = ("ES256", "RS256")
MAX_REQUEST = 256
MIN_TTL_S, MAX_TTL_S = 10.0, 86400.0
RSA_BITS = 3072


class BrokerError(Exception):
    """The broker cannot start or cannot answer (the message says why)."""


# --- keys ------------------------------------------------------------------------------------


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
    except ImportError as exc:
        raise BrokerError("the broker needs the cryptography package: "
                          "pip install 'shellspan[broker]'") from exc
    return serialization, ec, rsa


def public_paths(key_path: Path) -> tuple[Path, Path]:
    """Where the public key is published beside the private one: (PEM, JWKS)."""
    return key_path.with_suffix(".pub.pem"), key_path.with_suffix(".jwks.json")


class SigningKey:
    """The host's private key, its algorithm, and its public half as PEM and JWK."""

    def __init__(self, private_key) -> None:
        serialization, ec, rsa = _crypto()
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise BrokerError(f"an EC key must be on P-256 for ES256, not {private_key.curve.name}")
            self.algorithm = "ES256"
        elif isinstance(private_key, rsa.RSAPrivateKey):
            if private_key.key_size < 2048:
                raise BrokerError(f"an RSA key must have 2048 bits or more, not {private_key.key_size}")
            self.algorithm = "RS256"
        else:
            raise BrokerError("the key must be an EC (P-256) or RSA private key")
        self.private_key = private_key
        public = private_key.public_key()
        self.public_pem = public.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.jwk = _public_jwk(public, self.algorithm)
        self.kid = self.jwk["kid"]

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> SigningKey:
        _, ec, rsa = _crypto()
        if algorithm == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if algorithm == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))
        raise BrokerError(f"the algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Load a private key that only this process's user can read; refuse anything else."""
        serialization, _, _ = _crypto()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise BrokerError(f"cannot open the key {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BrokerError(f"the key {path} is not a regular file")
            if st.st_uid != os.geteuid():
                raise BrokerError(f"the key {path} belongs to uid {st.st_uid}, not to the "
                                  f"broker's user (uid {os.geteuid()}): chown it")
            if st.st_mode & 0o077:
                raise BrokerError(f"the key {path} is open to group or others (mode "
                                  f"{stat.S_IMODE(st.st_mode):o}): chmod 600 {path}")
            data = f.read(1 << 20)
        try:
            return cls(serialization.load_pem_private_key(data, password=None))
        except (ValueError, TypeError) as exc:
            raise BrokerError(f"{path} is not an unencrypted PEM private key: {exc}") from exc

    def private_pem(self) -> bytes:
        serialization, _, _ = _crypto()
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def jwks(self) -> dict:
        return {"keys": [self.jwk]}

    def sign(self, claims: dict) -> str:
        import jwt

        return jwt.encode(claims, self.private_key, algorithm=self.algorithm,
                          headers={"kid": self.kid})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(public_key, algorithm: str) -> dict:
    """The JWK of a public key, with ``kid`` = its RFC 7638 thumbprint."""
    jwk = _jwk_members(public_key)
    jwk.update(kid=key_thumbprint(public_key), alg=algorithm, use="sig")
    return jwk


def _jwk_members(public_key) -> dict:
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    _, ec, _ = _crypto()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public_key, as_dict=True)
    return RSAAlgorithm.to_jwk(public_key, as_dict=True)


def key_thumbprint(public_key) -> str:
    """The RFC 7638 SHA-256 thumbprint of an EC or RSA public key (base64url): the broker's
    ``kid``, and the key id the sink stamps on what a key verified."""
    jwk = _jwk_members(public_key)
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def publish(key: SigningKey, key_path: Path) -> tuple[Path, Path]:
    """Write the public key beside the private one (world-readable); returns (PEM, JWKS)."""
    pem_path, jwks_path = public_paths(key_path)
    for path, data in ((pem_path, key.public_pem),
                       (jwks_path, (json.dumps(key.jwks(), indent=2) + "\n").encode())):
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        replace_file(path, data, 0o644, sync=True)
    return pem_path, jwks_path


def create_key(key_path: Path, algorithm: str, *, force: bool = False) -> SigningKey:
    """A new private key at ``key_path`` (0600), its public half published beside it."""
    if key_path.exists() and not force:
        raise BrokerError(f"{key_path} exists (use --force to replace it: tokens signed with "
                          "the old key stop verifying once sinks trust only the new one)")
    key_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    key = SigningKey.generate(algorithm)
    replace_file(key_path, key.private_pem(), 0o600, sync=True)
    publish(key, key_path)
    return key


def load_or_create_key(key_path: Path, algorithm: str) -> tuple[SigningKey, bool]:
    """The key at ``key_path``, created on first start; (key, created)."""
    if not os.path.lexists(key_path):
        return create_key(key_path, algorithm), True
    key = SigningKey.load(key_path)
    publish(key, key_path)
    return key, False


# --- the service -----------------------------------------------------------------------------


def peer_uid(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket, from the kernel."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return pid, uid


def listen(path: str) -> socket.socket:
    """A listening socket at ``path`` that every local user may connect to. The directory must
    be the broker user's own and closed to writes by others (so no one can swap the socket)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.stat(directory)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise BrokerError(f"the socket directory {directory} must belong to uid {os.geteuid()} "
                          f"and be writable by it alone (mode {stat.S_IMODE(st.st_mode):o})")
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise BrokerError(f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # left by a broker that is gone
            else:
                raise BrokerError(f"another broker is listening on {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o666)  # any local user may ask; the kernel says who they are
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Broker:
    """Mints tokens for the uids that connect to its socket."""

    def __init__(self, key: SigningKey, socket_path: str, *, ttl_s: float = 300.0,
                 audience: str = AUDIENCE, issuer: str = "", host: str | None = None,
                 timeout_s: float = 5.0, max_per_uid: int = 8, max_connections: int = 512,
                 log=None) -> None:
        self.key, self.socket_path = key, socket_path
        self.ttl_s = int(min(max(ttl_s, MIN_TTL_S), MAX_TTL_S))
        self.audience, self.issuer = audience, issuer
        self.host = host or os.uname().nodename
        self.timeout_s, self.max_per_uid, self.max_connections = timeout_s, max_per_uid, max_connections
        self.per_uid: dict[int, int] = {}
        self.active = 0
        self.issued = 0
        self._busy_logged: dict[int, float] = {}  # uid -> when its refusal was last logged
        self.log = log or (lambda msg: print(f"shellspan broker: {msg}", file=sys.stderr, flush=True))
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broker-mint")

    def claims(self, uid: int, now: int | None = None) -> dict:
        """The claims of a token for ``uid``: its login name from the password database."""
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError as exc:
            raise BrokerError(f"uid {uid} has no entry in the password database") from exc
        iat = int(time.time() if now is None else now)
        claims = {"sub": name, CLAIM_UID: uid, CLAIM_HOST: self.host, "iat": iat,
                  "exp": iat + self.ttl_s, "aud": self.audience}
        if self.issuer:
            claims["iss"] = self.issuer
        return claims

    def mint(self, uid: int) -> tuple[str, str]:
        claims = self.claims(uid)
        return self.key.sign(claims), claims["sub"]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            pid, uid = peer_uid(sock)
        except OSError:
            writer.close()
            return
        if self.active >= self.max_connections or self.per_uid.get(uid, 0) >= self.max_per_uid:
            now = time.monotonic()
            if now - self._busy_logged.get(uid, -60.0) >= 60.0:  # a flood logs once a minute
                self._busy_logged[uid] = now
                self.log(f"busy: refusing connections from uid {uid} (pid {pid})")
            writer.close()
            return
        self.active += 1
        self.per_uid[uid] = self.per_uid.get(uid, 0) + 1
        try:
            reply = await asyncio.wait_for(self._answer(reader, uid, pid), self.timeout_s)
            writer.write(reply)
            await asyncio.wait_for(writer.drain(), self.timeout_s)
        except (asyncio.TimeoutError, OSError):
            pass  # a client too slow to ask or to read: dropped, nobody else waited
        finally:
            self.active -= 1
            self.per_uid[uid] -= 1
            if not self.per_uid[uid]:
                del self.per_uid[uid]
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, uid: int, pid: int) -> bytes:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return b"ERR the request must be one line ending in a newline\n"
        except asyncio.LimitOverrunError:
            return f"ERR requests are at most {MAX_REQUEST} bytes\n".encode()
        words = line.split()
        if words[:1] != [b"TOKEN"]:
            return b"ERR unknown request: send TOKEN\n"
        try:
            token, name = await asyncio.get_running_loop().run_in_executor(self._pool, self.mint, uid)
        except BrokerError as exc:
            self.log(f"refused uid {uid} (pid {pid}): {exc}")
            return f"ERR {exc}\n".encode()
        self.issued += 1
        self.log(f"token for {name} (uid {uid}, pid {pid}), {self.ttl_s} s")
        return f"OK {self.ttl_s} {token}\n".encode()

    async def serve(self, stop: asyncio.Event) -> None:
        sock = listen(self.socket_path)
        server = await asyncio.start_unix_server(self.handle, sock=sock, limit=MAX_REQUEST)
        self.log(f"listening on {self.socket_path} ({self.key.algorithm}, kid {self.key.kid}, "
                  f"host {self.host}, tokens live {self.ttl_s} s)")
        try:
            await stop.wait()
        finally:
            server.close()
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
            self._pool.shutdown(wait=False)
            self.log("stopped")

    def run(self) -> int:
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        asyncio.run(main())
        return 0


# --- command line ----------------------------------------------------------------------------

COMMANDS = ("serve", "keygen", "public-key", "token")


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(prog="shellspan broker", description=(
        "The host's token broker: a root service that signs short-lived tokens for the local "
        "users who connect to its socket (docs/security.md). Commands: serve (the default); "
        "keygen (create the host key, publish its public half); public-key (print it, PEM or "
        "--jwks); token (ask the broker for a token for yourself and print it, or --claims)."))
    p.add_argument("command", nargs="?", default="serve", choices=COMMANDS)
    p.add_argument("--socket", default=env.get("SHELLSPAN_BROKER_SOCKET") or DEFAULT_BROKER_SOCKET,
                   help="the Unix socket [SHELLSPAN_BROKER_SOCKET]")
    p.add_argument("--key", default=env.get("SHELLSPAN_BROKER_KEY") or DEFAULT_KEY,
                   help="the private key, PEM, mode 0600 [SHELLSPAN_BROKER_KEY]")
    p.add_argument("--alg", choices=ALGORITHMS, default=env.get("SHELLSPAN_BROKER_ALG") or "ES256",
                   help="algorithm of a key created by keygen or on first start "
                        "[SHELLSPAN_BROKER_ALG]")
    p.add_argument("--ttl", type=float, default=_env_float(env, "SHELLSPAN_BROKER_TTL", 300.0),
                   help="seconds a token lives, 10 to 86400 [SHELLSPAN_BROKER_TTL]")
    p.add_argument("--audience", default=env.get("SHELLSPAN_BROKER_AUDIENCE") or AUDIENCE,
                   help="the aud claim [SHELLSPAN_BROKER_AUDIENCE]")
    p.add_argument("--issuer", default=env.get("SHELLSPAN_BROKER_ISSUER", ""),
                   help="the iss claim, if any [SHELLSPAN_BROKER_ISSUER]")
    p.add_argument("--force", action="store_true", help="keygen: replace an existing key")
    p.add_argument("--jwks", action="store_true", help="public-key: print a JWKS, not PEM")
    p.add_argument("--claims", action="store_true", help="token: print the claims, not the token")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    key_path = Path(args.key)
    try:
        if args.command == "token":
            token, _ttl = request_broker_token(args.socket, timeout_s=5.0)
            if args.claims:
                import jwt

                token = json.dumps(jwt.decode(token, options={"verify_signature": False}),
                                   indent=2)
            print(token)
            return 0
        if args.command == "keygen":
            key = create_key(key_path, args.alg, force=args.force)
            pem, jwks = public_paths(key_path)
            print(f"created {key_path} ({key.algorithm}, kid {key.kid}); public key: {pem}, {jwks}")
            return 0
        if args.command == "public-key":
            key = SigningKey.load(key_path)
            sys.stdout.write(json.dumps(key.jwks(), indent=2) + "\n" if args.jwks
                             else key.public_pem.decode())
            return 0
        key, created = load_or_create_key(key_path, args.alg)
        broker = Broker(key, args.socket, ttl_s=args.ttl, audience=args.audience,
                        issuer=args.issuer)
        if created:
            pem, jwks = public_paths(key_path)
            broker.log(f"created the host key {key_path}; give the sink {pem} or {jwks}")
        return broker.run()
    except (BrokerError, TokenError, OSError) as exc:
        print(f"shellspan broker: {exc}", file=sys.stderr)
        return 1
