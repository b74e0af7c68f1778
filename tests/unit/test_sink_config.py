"""The sink's configuration: one table of options, flags over variables over defaults, old names
kept as aliases, and bad values reported with the flag or variable they came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellspan_sink import config
from shellspan_sink.cli import build_parser
from shellspan_sink.config import ConfigError, SinkConfig


def load(argv: list[str], env: dict[str, str] | None = None, command: str = "serve") -> SinkConfig:
    args = build_parser().parse_args([command, *argv])
    scope = config.SERVE if command == "serve" else config.STORE
    return config.load(args, env or {}, scope)


def test_defaults_come_from_the_config_object_alone():
    cfg = load([])
    assert cfg == SinkConfig()
    assert (cfg.otlp_http, cfg.otlp_grpc, cfg.api) == ("127.0.0.1:4318", "127.0.0.1:4317",
                                                       "127.0.0.1:8678")
    assert cfg.store_dsn.startswith("chdb://") and cfg.wal_path == Path(cfg.store_dsn[7:] + "-wal")
    assert cfg.auth.audience == "shellspan" and cfg.auth.mode is None


def test_a_flag_wins_over_its_variable_and_a_variable_over_the_default():
    env = {"SHELLSPAN_MAX_WAL_BYTES": "5000", "SHELLSPAN_OTLP_HTTP": "0.0.0.0:1"}
    cfg = load(["--max-wal-bytes", "7000"], env)
    assert cfg.max_wal_bytes == 7000 and cfg.otlp_http == "0.0.0.0:1"


@pytest.mark.parametrize("argv,env,expected", [
    (["--wal", "/w/old-flag"], {}, "/w/old-flag"),
    (["--wal-dir", "/w/new-flag"], {}, "/w/new-flag"),
    ([], {"SHELLSPAN_WAL": "/w/old-env"}, "/w/old-env"),
    ([], {"SHELLSPAN_WAL_DIR": "/w/new-env", "SHELLSPAN_WAL": "/w/old-env"}, "/w/new-env"),
])
def test_wal_directory_old_names_are_aliases(argv, env, expected):
    assert load(argv, env).wal_path == Path(expected)


@pytest.mark.parametrize("argv,env", [
    (["--max-spool-bytes", "123"], {}),
    ([], {"SHELLSPAN_MAX_SPOOL_BYTES": "123"}),
    ([], {"SHELLSPAN_MAX_WAL_BYTES": "123", "SHELLSPAN_MAX_SPOOL_BYTES": "999"}),
])
def test_wal_bound_old_names_are_aliases(argv, env):
    assert load(argv, env).max_wal_bytes == 123


def test_authentication_comes_from_the_environment():
    cfg = load([], {"SHELLSPAN_AUTH_MODE": "required", "SHELLSPAN_AUTH_SECRET": "s" * 32,
                    "SHELLSPAN_AUTH_PUBLIC_KEYS": "/k/a.pem, /k/b.pem,", "SHELLSPAN_AUTH_LEEWAY": "0",
                    "SHELLSPAN_AUTH_ISSUER": ""})
    assert (cfg.auth.mode, cfg.auth.secret, cfg.auth.public_key_files, cfg.auth.leeway,
            cfg.auth.issuer) == ("required", "s" * 32, ["/k/a.pem", "/k/b.pem"], 0.0, None)
    # An empty audience switches the aud check off (an empty variable elsewhere counts as unset).
    assert load([], {"SHELLSPAN_AUTH_AUDIENCE": ""}).auth.audience is None


@pytest.mark.parametrize("argv,env,message", [
    (["--max-wal-bytes", "12x"], {}, "--max-wal-bytes: must be a whole number, not '12x'"),
    ([], {"SHELLSPAN_MAX_SPOOL_BYTES": "-1"}, "SHELLSPAN_MAX_SPOOL_BYTES: must be at least 1"),
    (["--max-body-bytes", "0"], {}, "--max-body-bytes: must be at least 1"),
    (["--otlp-grpc", "4317"], {}, "--otlp-grpc: must be HOST:PORT"),
    (["--api", "localhost:99999"], {}, "--api: must be HOST:PORT"),
    (["--abandon-after", "nan"], {}, "--abandon-after: must be a number of seconds"),
    ([], {"SHELLSPAN_WAL_SEGMENT_AGE": "0"}, "SHELLSPAN_WAL_SEGMENT_AGE: must be more than 0"),
    (["--database", "x; DROP"], {}, "--database: must be a ClickHouse identifier"),
    ([], {"SHELLSPAN_CLUSTER": "a-b"}, "SHELLSPAN_CLUSTER: must be a ClickHouse identifier"),
    (["--store", "mysql://x"], {}, "--store: unsupported store DSN scheme 'mysql'"),
    ([], {"SHELLSPAN_ENCODER": "fast"}, "SHELLSPAN_ENCODER: must be one of auto, python, compiled"),
    ([], {"SHELLSPAN_AUTH_MODE": "maybe"}, "SHELLSPAN_AUTH_MODE: must be one of required"),
    ([], {"SHELLSPAN_AUTH_LEEWAY": "soon"}, "SHELLSPAN_AUTH_LEEWAY: must be a number of seconds"),
    (["--max-span-age", "a week"], {}, "--max-span-age: must be seconds or a duration like"),
    ([], {"SHELLSPAN_MAX_SPAN_AHEAD": "-1h"}, "SHELLSPAN_MAX_SPAN_AHEAD: must be seconds or"),
    (["--body-timeout", "0"], {}, "--body-timeout: must be more than 0 seconds"),
    (["--max-inflight-bytes", "1000", "--max-body-bytes", "2000"], {},
     "--max-inflight-bytes (1000) must be at least --max-body-bytes (2000)"),
])
def test_bad_values_name_their_source(argv, env, message):
    with pytest.raises(ConfigError) as err:
        load(argv, env)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600),
                                          ("30d", 30 * 86400), ("0", 0), ("1.5h", 5400)])
def test_span_window_takes_durations(text, seconds):
    cfg = load(["--max-span-age", text, "--max-span-ahead", text])
    assert cfg.max_span_age == cfg.max_span_ahead == seconds
    assert (cfg.limits.max_span_age_s, cfg.limits.max_span_ahead_s) == (seconds, seconds)


def test_span_window_defaults_a_year_back_and_a_day_ahead():
    limits = SinkConfig().limits
    now = 2_000_000_000 * 10**9
    assert limits.window(now) == (now - 366 * 86400 * 10**9, now + 86400 * 10**9)
    assert limits.describe_window() == "from 366d before to 1d after the sink's clock"
    unbounded = load(["--max-span-age", "0", "--max-span-ahead", "0"]).limits
    assert unbounded.window(now) == (0, 2**64 - 1)


def test_store_options_serve_migrate_and_queries_alike():
    env = {"SHELLSPAN_DATABASE": "audit", "SHELLSPAN_CLUSTER": "shells"}
    for command in ("migrate", "sql"):
        argv = ["SELECT 1"] if command == "sql" else []
        cfg = load(argv, env, command)
        assert (cfg.schema.database, cfg.schema.cluster, cfg.store) == ("audit", "shells", None)
    with pytest.raises(ConfigError, match="--abandon-after"):
        load(["--abandon-after", "-3", "x"], {}, "sql")
