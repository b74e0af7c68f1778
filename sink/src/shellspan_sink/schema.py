"""Table definitions and versioned migrations.

The raw table keeps the column names and types of the OpenTelemetry Collector contrib ClickHouse
exporter's ``otel_traces`` table, so the contrib exporter, Grafana's ClickHouse data source and the
sink can share it. Two departures, both for exactly-once query results:

* the engine is ``ReplacingMergeTree`` and the sorting key ends with ``TraceId, SpanId``, so a
  re-delivered span collapses into its first copy (queries read with ``FINAL``);
* the derived tables are filled by materialized views from the raw table, never by the sink
  directly, so every ingestion path (sink or contrib exporter) yields the same sessions.

Session id = trace id (one trace per shell session).

Cluster mode writes ``*_local`` replicated tables on every node plus ``Distributed`` tables under
the canonical names, all ``ON CLUSTER``; queries use the canonical names in both modes. Rows are
sharded by trace id so a session's spans, and their deduplication, stay on one shard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from shellspan import semconv

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SESSION_SPANS = "(" + ", ".join(f"'{n}'" for n in semconv.SESSION_SPAN_NAMES) + ")"


def check_identifier(name: str) -> str:
    """Identifiers (database, cluster) come from configuration and cannot be bound; validate them."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid ClickHouse identifier: {name!r}")
    return name


@dataclass(frozen=True)
class SchemaOptions:
    database: str = "shellspan"
    cluster: str | None = None
    ttl_days: int = 0  # 0 keeps data forever

    def __post_init__(self) -> None:
        check_identifier(self.database)
        if self.cluster is not None:
            check_identifier(self.cluster)

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def local(self, table: str) -> str:
        """Fully qualified name of the table that holds data (the replicated one on a cluster)."""
        suffix = "_local" if self.cluster else ""
        return f"`{self.database}`.`{table}{suffix}`"

    def name(self, table: str) -> str:
        """Fully qualified name that queries and inserts use in both modes."""
        return f"`{self.database}`.`{table}`"

    def engine(self, kind: str, table: str) -> str:
        """`table` is the canonical name; on a cluster the replication path names the local one."""
        if self.cluster:
            path = f"/clickhouse/tables/{{shard}}/{self.database}/{table}_local"
            return f"Replicated{kind}('{path}', '{{replica}}')"
        return kind

    def ttl(self, column: str) -> str:
        if not self.ttl_days:
            return ""
        return f"TTL toDateTime({column}) + toIntervalDay({int(self.ttl_days)})"


def _attr(key: str) -> str:
    """A shellspan attribute, from the span's attributes or else from its resource."""
    return f"if(SpanAttributes['{key}'] != '', SpanAttributes['{key}'], ResourceAttributes['{key}'])"


def _table_statements(o: SchemaOptions, table: str, ddl: str, sharding_key: str) -> list[str]:
    """`ddl` creates the data table; in cluster mode also a Distributed table over it."""
    statements = [ddl]
    if o.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {o.name(table)}{o.on_cluster} AS {o.local(table)} "
            f"ENGINE = Distributed('{o.cluster}', '{o.database}', '{table}_local', {sharding_key})"
        )
    return statements


def v1_initial(o: SchemaOptions) -> list[str]:
    traces = o.local("otel_traces")
    stmts = [f"CREATE DATABASE IF NOT EXISTS `{o.database}`{o.on_cluster}"]
    stmts += _table_statements(o, "otel_traces", f"""
CREATE TABLE IF NOT EXISTS {traces}{o.on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = {o.engine("ReplacingMergeTree", "otel_traces")}
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp, TraceId, SpanId)
{o.ttl("Timestamp")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""", "cityHash64(TraceId)")

    # The contrib exporter's trace-id lookup table (Grafana bounds its by-id query with it).
    stmts += _table_statements(o, "otel_traces_trace_id_ts", f"""
CREATE TABLE IF NOT EXISTS {o.local("otel_traces_trace_id_ts")}{o.on_cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = {o.engine("AggregatingMergeTree", "otel_traces_trace_id_ts")}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{o.ttl("Start")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""", "cityHash64(TraceId)")
    stmts.append(f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.local("otel_traces_trace_id_ts_mv")}{o.on_cluster}
TO {o.local("otel_traces_trace_id_ts")}
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {traces}
WHERE TraceId != ''
GROUP BY TraceId""")

    # One row per session and insert block; merged by aggregation. Span ids (64-bit hashes) go
    # into uniqExact states, so a re-delivered command span never counts twice.
    stmts += _table_statements(o, "shell_sessions", f"""
CREATE TABLE IF NOT EXISTS {o.local("shell_sessions")}{o.on_cluster} (
    session_id String,
    start_time SimpleAggregateFunction(min, DateTime64(9)),
    last_seen SimpleAggregateFunction(max, DateTime64(9)),
    end_time SimpleAggregateFunction(max, DateTime64(9)),
    ended SimpleAggregateFunction(max, UInt8),
    service_name SimpleAggregateFunction(max, String),
    shell_type SimpleAggregateFunction(max, String),
    user_name SimpleAggregateFunction(max, String),
    host_name SimpleAggregateFunction(max, String),
    component_name SimpleAggregateFunction(max, String),
    component_version SimpleAggregateFunction(max, String),
    tty SimpleAggregateFunction(max, String),
    client_address SimpleAggregateFunction(max, String),
    pid SimpleAggregateFunction(max, String),
    exit_reason SimpleAggregateFunction(max, String),
    exit_code SimpleAggregateFunction(max, String),
    enduser_id SimpleAggregateFunction(max, String),
    verified SimpleAggregateFunction(max, UInt8),
    command_ids AggregateFunction(uniqExact, UInt64),
    failed_ids AggregateFunction(uniqExact, UInt64)
) ENGINE = {o.engine("AggregatingMergeTree", "shell_sessions")}
ORDER BY session_id""", "cityHash64(session_id)")
    root = f"SpanName = '{semconv.SPAN_SESSION}'"
    command = f"SpanName = '{semconv.SPAN_COMMAND}'"
    identity = {
        "service_name": "ServiceName",
        "shell_type": _attr(semconv.SHELL_TYPE),
        "user_name": _attr(semconv.USER_NAME),
        "host_name": _attr(semconv.HOST_NAME),
        "component_name": _attr(semconv.COMPONENT_NAME),
        "component_version": _attr(semconv.COMPONENT_VERSION),
        "tty": _attr(semconv.TTY),
        "client_address": _attr(semconv.CLIENT_ADDRESS),
        "pid": _attr(semconv.PROCESS_PID),
        "enduser_id": f"SpanAttributes['{semconv.ENDUSER_ID}']",
    }
    identity_cols = ",\n    ".join(
        f"max(if({command}, '', {expr})) AS {col}" for col, expr in identity.items()
    )
    stmts.append(f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.local("shell_sessions_mv")}{o.on_cluster}
TO {o.local("shell_sessions")}
AS SELECT
    TraceId AS session_id,
    min(Timestamp) AS start_time,
    max(Timestamp + toIntervalNanosecond(Duration)) AS last_seen,
    max(if({root}, Timestamp + toIntervalNanosecond(Duration), toDateTime64(0, 9))) AS end_time,
    max({root}) AS ended,
    {identity_cols},
    max(if({root}, SpanAttributes['{semconv.EXIT_REASON}'], '')) AS exit_reason,
    max(if({root}, SpanAttributes['{semconv.EXIT_CODE}'], '')) AS exit_code,
    max(SpanAttributes['{semconv.AUTH_VERIFIED}'] = 'true') AS verified,
    uniqExactStateIf(cityHash64(SpanId), {command}) AS command_ids,
    uniqExactStateIf(cityHash64(SpanId), {command} AND StatusCode = 'Error') AS failed_ids
FROM {traces}
WHERE SpanName IN {SESSION_SPANS}
GROUP BY TraceId""")

    stmts += _table_statements(o, "shell_commands", f"""
CREATE TABLE IF NOT EXISTS {o.local("shell_commands")}{o.on_cluster} (
    session_id String,
    span_id String,
    start_time DateTime64(9),
    duration_ns UInt64,
    seq UInt64,
    command String,
    command_name LowCardinality(String),
    cwd String,
    exit_code Nullable(Int64),
    status LowCardinality(String),
    redacted UInt8,
    user_name LowCardinality(String),
    host_name LowCardinality(String)
) ENGINE = {o.engine("ReplacingMergeTree", "shell_commands")}
PARTITION BY toYYYYMM(start_time)
ORDER BY (session_id, span_id)
{o.ttl("start_time")}""", "cityHash64(session_id)")
    stmts.append(f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.local("shell_commands_mv")}{o.on_cluster}
TO {o.local("shell_commands")}
AS SELECT
    TraceId AS session_id,
    SpanId AS span_id,
    Timestamp AS start_time,
    Duration AS duration_ns,
    toUInt64OrZero(SpanAttributes['{semconv.COMMAND_SEQ}']) AS seq,
    SpanAttributes['{semconv.COMMAND_LINE}'] AS command,
    SpanAttributes['{semconv.COMMAND_NAME}'] AS command_name,
    SpanAttributes['{semconv.CWD}'] AS cwd,
    toInt64OrNull(SpanAttributes['{semconv.EXIT_CODE}']) AS exit_code,
    StatusCode AS status,
    SpanAttributes['{semconv.COMMAND_REDACTED}'] = 'true' AS redacted,
    {_attr(semconv.USER_NAME)} AS user_name,
    {_attr(semconv.HOST_NAME)} AS host_name
FROM {traces}
WHERE {command}""")
    return stmts


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[SchemaOptions], list[str]]


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial schema", v1_initial),)


def migrations_table_ddl(o: SchemaOptions) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS `{o.database}`{o.on_cluster}",
        f"""CREATE TABLE IF NOT EXISTS `{o.database}`.`shellspan_migrations`{o.on_cluster} (
    version UInt32, name String, applied_at DateTime DEFAULT now()
) ENGINE = {o.engine("ReplacingMergeTree", "shellspan_migrations")} ORDER BY version""",
    ]
