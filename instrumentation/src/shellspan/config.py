"""Shell-side configuration: the standard OTEL_* variables plus SHELLSPAN_* for the rest.

Reading the configuration is a handful of dictionary look-ups, cheap enough for the shell's own
thread; anything that needs parsing modules (URLs, headers) is done by the export thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
DEFAULT_BROKER_SOCKET = "/run/shellspan/broker.sock"
TRUE = ("1", "true", "yes", "on")


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, "") or default)
    except ValueError:
        return default


def default_state_dir(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "shellspan")


class Config:
    """Everything the shell side reads from the environment (see docs/python-shells.md)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.disabled = (env.get("OTEL_SDK_DISABLED", "").lower() in TRUE
                         or env.get("SHELLSPAN_DISABLED", "").lower() in TRUE)
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "") or DEFAULT_ENDPOINT
        # Per signal (traces: the spans; logs: terminal recordings), as the OTLP exporter
        # specification reads them: the signal's own variable first, then the shared one.
        self.endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
                         or base.rstrip("/") + "/v1/traces")
        self.logs_endpoint = (env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "")
                              or base.rstrip("/") + "/v1/logs")
        self.protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                         or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
        self.headers_raw = (env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                            or env.get("OTEL_EXPORTER_OTLP_HEADERS") or "")
        self.logs_headers_raw = (env.get("OTEL_EXPORTER_OTLP_LOGS_HEADERS")
                                 or env.get("OTEL_EXPORTER_OTLP_HEADERS") or "")
        self.compression = (env.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
                            or env.get("OTEL_EXPORTER_OTLP_COMPRESSION") or "none").lower()
        self.logs_compression = (env.get("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION")
                                 or env.get("OTEL_EXPORTER_OTLP_COMPRESSION") or "none").lower()
        timeout_ms = _env_float(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                                _env_float(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000.0))
        # Background sends never need the spec's 10 s default: a slow endpoint is a dead one.
        self.send_timeout_s = min(timeout_ms / 1000.0, 3.0)
        self.service_name = env.get("OTEL_SERVICE_NAME", "") or "shellspan"
        self.resource_attributes_raw = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
        state = env.get("SHELLSPAN_STATE_DIR") or default_state_dir(env)
        self.spool_dir = env.get("SHELLSPAN_SPOOL_DIR") or os.path.join(state, "spool")
        self.spool_max_bytes = int(_env_float(env, "SHELLSPAN_SPOOL_MAX_BYTES", 32 * 1024 * 1024))
        self.spool_max_files = int(_env_float(env, "SHELLSPAN_SPOOL_MAX_FILES", 2000))
        self.heartbeat_s = max(_env_float(env, "SHELLSPAN_HEARTBEAT_INTERVAL", 60.0), 0.2)
        self.exit_budget_s = _env_float(env, "SHELLSPAN_EXIT_BUDGET_MS", 50.0) / 1000.0
        self.exit_handoff = env.get("SHELLSPAN_EXIT_HANDOFF", "1").lower() in TRUE
        self.start_delay_s = _env_float(env, "SHELLSPAN_START_DELAY_MS", 50.0) / 1000.0
        # Tokens (shellspan.auth): the host's broker first, then a ready token, then a shared
        # secret read from a file. A secret in the environment is noted only to be refused.
        self.broker_socket = env.get("SHELLSPAN_BROKER_SOCKET", "") or DEFAULT_BROKER_SOCKET
        self.auth_token = env.get("SHELLSPAN_AUTH_TOKEN", "")
        self.auth_secret_file = env.get("SHELLSPAN_AUTH_SECRET_FILE", "")
        self.auth_secret_in_env = bool(env.get("SHELLSPAN_AUTH_SECRET"))
        self.auth_ttl_s = max(_env_float(env, "SHELLSPAN_AUTH_TTL", 300.0), 10.0)
        self.debug = env.get("SHELLSPAN_DEBUG", "").lower() in TRUE
        # Terminal recordings (``shellspan record``; Python shells' own output capture).
        self.record_output = env.get("SHELLSPAN_RECORD_OUTPUT", "").lower() in TRUE
        self.snapshots = env.get("SHELLSPAN_SNAPSHOTS", "1").lower() in TRUE
        self.snapshot_s = max(_env_float(env, "SHELLSPAN_SNAPSHOT_INTERVAL", 300.0), 1.0)

    def signal(self, name: str) -> tuple[str, str, str]:
        """(endpoint, headers, compression) of an OTLP signal: ``traces`` or ``logs``."""
        if name == "logs":
            return self.logs_endpoint, self.logs_headers_raw, self.logs_compression
        return self.endpoint, self.headers_raw, self.compression


def parse_kv_list(raw: str) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES)."""
    from urllib.parse import unquote

    out: dict[str, str] = {}
    for item in raw.split(","):
        if "=" not in item:
            continue
        k, v = item.split("=", 1)
        k, v = unquote(k.strip()), unquote(v.strip())
        if k:
            out[k] = v
    return out
