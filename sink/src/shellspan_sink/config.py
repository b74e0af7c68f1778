"""The sink's configuration in one place: every option's flag, environment variable, check and
default. A flag wins over its variable, a variable over the default (the field's default in
`SinkConfig`). Old names stay accepted as aliases: ``--wal``/``SHELLSPAN_WAL`` for the WAL
directory, ``--max-spool-bytes``/``SHELLSPAN_MAX_SPOOL_BYTES`` for its bound.

A bad value stops the command with a message that names the flag or variable it came from.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .auth import MODES, AuthConfig
from .schema import SchemaOptions
from .store import check_dsn, default_store_dsn, state_dir
from .tables import check_identifier

ENCODERS = ("auto", "python", "compiled")  # see ingest.select_encoder


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says where it came from."""


@dataclass(frozen=True)
class SinkConfig:
    store: str | None = None  # None: the embedded store under the state directory
    database: str = "shellspan"
    cluster: str | None = None
    ttl_days: int = 0  # 0 keeps data forever
    abandon_after: float = 300.0
    otlp_http: str = "127.0.0.1:4318"
    otlp_grpc: str = "127.0.0.1:4317"
    api: str = "127.0.0.1:8678"
    max_body_bytes: int = 16 * 1024 * 1024
    max_inflight_bytes: int = 64 * 1024 * 1024
    body_timeout: float = 60.0
    # Span times accepted, relative to the sink's clock (0: no bound); see ingest. A year back
    # takes in what waited out any plausible outage in a spool or a collector's queue; a day
    # ahead takes in a host whose clock is hours off (the received time shows by how much).
    # Beyond those, a time is garbage (1970, 2262, a counter), not a record.
    max_span_age: float = 366 * 86400.0
    max_span_ahead: float = 86400.0
    wal_dir: Path | None = None  # None: beside an embedded store, else under the state directory
    max_wal_bytes: int = 1 << 30
    wal_segment_age: float = 0.5
    wal_segment_spans: int = 100_000
    ack_timeout: float = 30.0
    encoder: str = "auto"
    sql_store: str | None = None  # None: the store itself
    sql_max_seconds: float = 30.0
    sql_max_rows: int = 10_000
    sql_max_result_bytes: int = 32 * 1024 * 1024
    sql_max_memory: int = 1024 * 1024 * 1024
    max_streams: int = 64
    stream_heartbeat: float = 15.0
    live_poll: float = 2.0
    rollup_interval: float = 5.0
    auth: AuthConfig = field(default_factory=AuthConfig)

    @property
    def store_dsn(self) -> str:
        return self.store or default_store_dsn()

    @property
    def schema(self) -> SchemaOptions:
        return SchemaOptions(database=self.database, cluster=self.cluster, ttl_days=self.ttl_days)

    @property
    def sql_limits(self):  # -> sqlgate.SqlLimits
        from .sqlgate import SqlLimits

        return SqlLimits(max_seconds=self.sql_max_seconds, max_rows=self.sql_max_rows,
                         max_result_bytes=self.sql_max_result_bytes,
                         max_memory_bytes=self.sql_max_memory)

    @property
    def limits(self):  # -> ingest.IngestLimits (imported here: the query commands never need it)
        from .ingest import IngestLimits

        return IngestLimits(max_body_bytes=self.max_body_bytes, max_span_age_s=self.max_span_age,
                            max_span_ahead_s=self.max_span_ahead)

    def check(self) -> SinkConfig:
        """Checks across options; ConfigError names them."""
        if self.max_inflight_bytes < self.max_body_bytes:
            raise ConfigError(f"--max-inflight-bytes ({self.max_inflight_bytes}) must be at least "
                              f"--max-body-bytes ({self.max_body_bytes}), or a request of the "
                              "largest size could never be taken")
        return self

    @property
    def wal_path(self) -> Path:
        if self.wal_dir is not None:
            return Path(self.wal_dir)
        dsn = self.store_dsn
        if dsn.startswith("chdb://"):
            return Path(dsn[len("chdb://"):].rstrip("/") + "-wal")
        return state_dir() / "sink-wal"

    @property
    def logs_wal_path(self) -> Path:
        """The log records' WAL (terminal recordings): a directory of its own in the WAL's."""
        return self.wal_path / "logs"


# --- checks: text in, value out, ValueError with the reason ------------------------------------

def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"must be HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port)


def _address(text: str) -> str:
    split_address(text)
    return text


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, not {value}")
        return value
    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a number of seconds, at least 0, not {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value == 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {text!r}")
        return text
    return parse


def _identifier(text: str) -> str:
    try:
        return check_identifier(text)
    except ValueError:
        raise ValueError(f"must be a ClickHouse identifier (letters, digits, _), not {text!r}") \
            from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """Seconds, or a number with a unit: 90s, 15m, 1h, 30d. 0 is allowed (no bound)."""
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:]) if text else None
    try:
        value = _number(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ValueError(f"must be seconds or a duration like 90s, 15m, 1h, 30d, not {text!r}") \
            from None
    return value


def _text(text: str) -> str:
    return text


def _text_or_none(text: str) -> str | None:
    return text or None


def _paths(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


# --- the options ----------------------------------------------------------------------------

SERVE, STORE = "serve", "store"  # STORE options also serve `migrate` and the query commands


@dataclass(frozen=True)
class Option:
    field: str  # of SinkConfig, or of AuthConfig when `auth`
    flags: tuple[str, ...]  # the first is the name; the rest are accepted aliases
    env: tuple[str, ...]  # likewise
    parse: Callable[[str], Any]
    help: str
    scope: str = SERVE
    auth: bool = False
    empty_counts: bool = False  # an empty variable is a value (else it counts as unset)
    shown_default: str | None = None  # the default as --help shows it, when not the field's

    @property
    def source_names(self) -> str:
        return " / ".join(n for n in (self.flags[:1] + self.env[:1]) if n)


OPTIONS: tuple[Option, ...] = (
    Option("store", ("--store",), ("SHELLSPAN_STORE",), check_dsn,
           "chdb:///path (embedded) or http(s)://user:pass@host:port/db (serve and migrate: an "
           "embedded store under the state directory unless given; queries: a server to query "
           "directly instead of --api)", STORE),
    Option("database", ("--database",), ("SHELLSPAN_DATABASE",), _identifier,
           "database holding the tables", STORE),
    Option("cluster", ("--cluster",), ("SHELLSPAN_CLUSTER",), _identifier,
           "ClickHouse cluster name: replicated + distributed tables, ON CLUSTER DDL", STORE),
    Option("ttl_days", ("--ttl-days",), ("SHELLSPAN_TTL_DAYS",), _whole(0),
           "days to keep spans and recordings (0: forever); applies to the tables a migration "
           "creates", STORE),
    Option("abandon_after", ("--abandon-after",), ("SHELLSPAN_ABANDON_AFTER",), _seconds,
           "seconds without a heartbeat after which an open session is abandoned", STORE),
    Option("otlp_http", ("--otlp-http",), ("SHELLSPAN_OTLP_HTTP",), _address,
           "OTLP/HTTP listener, HOST:PORT"),
    Option("otlp_grpc", ("--otlp-grpc",), ("SHELLSPAN_OTLP_GRPC",), _address,
           "OTLP/gRPC listener, HOST:PORT"),
    Option("api", ("--api",), ("SHELLSPAN_API_LISTEN",), _address,
           "API and web UI listener, HOST:PORT"),
    Option("max_body_bytes", ("--max-body-bytes",), ("SHELLSPAN_MAX_BODY_BYTES",), _whole(1),
           "largest OTLP request accepted (compressed and, times eight, inflated)"),
    Option("max_inflight_bytes", ("--max-inflight-bytes",), ("SHELLSPAN_MAX_INFLIGHT_BYTES",),
           _whole(1), "request-body bytes held at once over all OTLP connections; beyond, "
           "answer 503 Retry-After (gRPC UNAVAILABLE) before reading the body"),
    Option("body_timeout", ("--body-timeout",), ("SHELLSPAN_BODY_TIMEOUT",), _seconds,
           "seconds an OTLP/HTTP body may take to arrive (then 408)"),
    Option("max_span_age", ("--max-span-age",), ("SHELLSPAN_MAX_SPAN_AGE",), _duration,
           "refuse spans (OTLP partial success) that started longer ago than this (seconds, or "
           "90s/15m/1h/30d; 0: no bound)", shown_default="366d"),
    Option("max_span_ahead", ("--max-span-ahead",), ("SHELLSPAN_MAX_SPAN_AHEAD",), _duration,
           "refuse spans that start or end further ahead of the sink's clock than this (0: no "
           "bound)", shown_default="1d"),
    Option("wal_dir", ("--wal-dir", "--wal"), ("SHELLSPAN_WAL_DIR", "SHELLSPAN_WAL"), Path,
           "the write-ahead log (WAL) directory: requests are acknowledged once written there "
           "(default: beside an embedded store, else under the state directory)"),
    Option("max_wal_bytes", ("--max-wal-bytes", "--max-spool-bytes"),
           ("SHELLSPAN_MAX_WAL_BYTES", "SHELLSPAN_MAX_SPOOL_BYTES"), _whole(1),
           "above this many bytes waiting in the WAL for the store, answer 503 Retry-After"),
    Option("wal_segment_age", ("--wal-segment-age",), ("SHELLSPAN_WAL_SEGMENT_AGE",), _seconds,
           "seconds after which the open WAL segment is sealed and inserted (fewer, larger "
           "inserts when longer; stored sooner when shorter)"),
    Option("sql_store", ("--sql-store",), ("SHELLSPAN_SQL_STORE",), check_dsn,
           "the DSN analysts' SQL runs with: on a server, a user with read grants on the "
           "database only (docs/security.md); default: the store", STORE),
    Option("sql_max_seconds", ("--sql-max-seconds",), ("SHELLSPAN_SQL_MAX_SECONDS",), _seconds,
           "longest an analyst's SQL statement may run", STORE),
    Option("sql_max_rows", ("--sql-max-rows",), ("SHELLSPAN_SQL_MAX_ROWS",), _whole(1),
           "most rows an analyst's SQL statement may return", STORE),
    Option("sql_max_result_bytes", ("--sql-max-result-bytes",), ("SHELLSPAN_SQL_MAX_RESULT_BYTES",),
           _whole(1), "most bytes an analyst's SQL statement may return", STORE),
    Option("sql_max_memory", ("--sql-max-memory",), ("SHELLSPAN_SQL_MAX_MEMORY",), _whole(1),
           "most memory (bytes) an analyst's SQL statement may use", STORE),
    Option("max_streams", ("--max-streams",), ("SHELLSPAN_MAX_STREAMS",), _whole(1),
           "live streams (Server-Sent Events) open at once; more are answered 503"),
    Option("stream_heartbeat", ("--stream-heartbeat",), ("SHELLSPAN_STREAM_HEARTBEAT",),
           _seconds, "seconds of silence after which a live stream sends a keep-alive comment"),
    Option("live_poll", ("--live-poll",), ("SHELLSPAN_LIVE_POLL",), _seconds,
           "while live streams are open, seconds between looks at the store for spans another "
           "writer stored (the sink's own inserts are seen at once)"),
    Option("rollup_interval", ("--rollup-interval",), ("SHELLSPAN_ROLLUP_INTERVAL",), _seconds,
           "at most this often, the hourly rollups of the stats are brought up to date after "
           "inserts (queries are exact meanwhile, at more cost)"),
    Option("encoder", (), ("SHELLSPAN_ENCODER",), _choice(*ENCODERS),
           "auto: the compiled encoder when installed; python: always the reference encoder"),
    Option("mode", (), ("SHELLSPAN_AUTH_MODE",), _choice(*MODES), "authentication mode",
           auth=True),
    Option("secret", (), ("SHELLSPAN_AUTH_SECRET",), _text, "HS256 shared secret", auth=True),
    Option("secret_file", (), ("SHELLSPAN_AUTH_SECRET_FILE",), _text,
           "a 0600 file holding the HS256 shared secret", auth=True),
    Option("public_key_files", (), ("SHELLSPAN_AUTH_PUBLIC_KEYS",), _paths,
           "comma-separated PEM files of RS256/ES256 public keys", auth=True),
    Option("jwks_file", (), ("SHELLSPAN_AUTH_JWKS",), _text, "a JWKS file", auth=True),
    Option("audience", (), ("SHELLSPAN_AUTH_AUDIENCE",), _text_or_none,
           "required aud claim (set empty: not checked)", auth=True, empty_counts=True),
    Option("issuer", (), ("SHELLSPAN_AUTH_ISSUER",), _text, "required iss claim", auth=True),
    Option("leeway", (), ("SHELLSPAN_AUTH_LEEWAY",), _number,
           "seconds of clock skew allowed on exp, nbf, iat", auth=True),
    Option("max_lifetime", (), ("SHELLSPAN_AUTH_MAX_LIFETIME",), _seconds,
           "longest token lifetime accepted (exp - iat), seconds", auth=True),
)

_DEFAULTS = {f.name: f.default for f in fields(SinkConfig)}


def add_arguments(parser: argparse.ArgumentParser, scope: str = SERVE) -> None:
    """The flags of the options of `scope` (SERVE: all of them), read as text and checked by
    `load`, so a bad value is reported the same way from a flag or from the environment."""
    for option in OPTIONS:
        if not option.flags or (scope == STORE and option.scope != STORE):
            continue
        default = option.shown_default or _DEFAULTS.get(option.field)
        shown = "" if default in (None, "") else f"; default {default}"
        parser.add_argument(*option.flags, dest=option.field, default=None, metavar="VALUE",
                            help=f"{option.help} (env {option.env[0]}{shown})")


def load(flags: argparse.Namespace | Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None, scope: str = SERVE) -> SinkConfig:
    """The configuration from parsed flags and the environment. Raises ConfigError."""
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    auth: dict[str, Any] = {}
    for option in OPTIONS:
        if scope == STORE and option.scope != STORE:
            continue
        text, source = given.get(option.field) if not option.auth else None, option.flags[:1]
        if text is None:
            name = next((n for n in option.env
                         if environ.get(n) or (option.empty_counts and n in environ)), None)
            text, source = (environ[name], (name,)) if name else (None, ())
        if text is None:
            continue
        try:
            value = option.parse(str(text))
        except ValueError as exc:
            raise ConfigError(f"{source[0]}: {exc}") from None
        (auth if option.auth else values)[option.field] = value
    return SinkConfig(**values, auth=AuthConfig(**auth)).check()
