CREATE DATABASE IF NOT EXISTS `shellspan`;

CREATE TABLE IF NOT EXISTS `shellspan`.`shellspan_migrations` (
    version UInt32, name String, applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY version;

CREATE DATABASE IF NOT EXISTS `shellspan`;

CREATE TABLE IF NOT EXISTS `shellspan`.`otel_traces` (
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
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp, TraceId, SpanId)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS `shellspan`.`otel_traces_trace_id_ts` (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS `shellspan`.`otel_traces_trace_id_ts_mv`
TO `shellspan`.`otel_traces_trace_id_ts`
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM `shellspan`.`otel_traces`
WHERE TraceId != ''
GROUP BY TraceId;

CREATE TABLE IF NOT EXISTS `shellspan`.`shell_sessions` (
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
) ENGINE = AggregatingMergeTree
ORDER BY session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS `shellspan`.`shell_sessions_mv`
TO `shellspan`.`shell_sessions`
AS SELECT
    TraceId AS session_id,
    min(Timestamp) AS start_time,
    max(Timestamp + toIntervalNanosecond(Duration)) AS last_seen,
    max(if(SpanName = 'shell.session', Timestamp + toIntervalNanosecond(Duration), toDateTime64(0, 9))) AS end_time,
    max(SpanName = 'shell.session') AS ended,
    max(if(SpanName = 'shell.command', '', ServiceName)) AS service_name,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['shell.type'] != '', SpanAttributes['shell.type'], ResourceAttributes['shell.type']))) AS shell_type,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['user.name'] != '', SpanAttributes['user.name'], ResourceAttributes['user.name']))) AS user_name,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['host.name'] != '', SpanAttributes['host.name'], ResourceAttributes['host.name']))) AS host_name,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['shell.component.name'] != '', SpanAttributes['shell.component.name'], ResourceAttributes['shell.component.name']))) AS component_name,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['shell.component.version'] != '', SpanAttributes['shell.component.version'], ResourceAttributes['shell.component.version']))) AS component_version,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['shell.tty'] != '', SpanAttributes['shell.tty'], ResourceAttributes['shell.tty']))) AS tty,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['client.address'] != '', SpanAttributes['client.address'], ResourceAttributes['client.address']))) AS client_address,
    max(if(SpanName = 'shell.command', '', if(SpanAttributes['process.pid'] != '', SpanAttributes['process.pid'], ResourceAttributes['process.pid']))) AS pid,
    max(if(SpanName = 'shell.command', '', SpanAttributes['enduser.id'])) AS enduser_id,
    max(if(SpanName = 'shell.session', SpanAttributes['shell.exit.reason'], '')) AS exit_reason,
    max(if(SpanName = 'shell.session', SpanAttributes['process.exit.code'], '')) AS exit_code,
    max(SpanAttributes['shell.auth.verified'] = 'true') AS verified,
    uniqExactStateIf(cityHash64(SpanId), SpanName = 'shell.command') AS command_ids,
    uniqExactStateIf(cityHash64(SpanId), SpanName = 'shell.command' AND StatusCode = 'Error') AS failed_ids
FROM `shellspan`.`otel_traces`
WHERE SpanName IN ('shell.session', 'shell.session.start', 'shell.session.heartbeat', 'shell.command')
GROUP BY TraceId;

CREATE TABLE IF NOT EXISTS `shellspan`.`shell_commands` (
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
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (session_id, span_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS `shellspan`.`shell_commands_mv`
TO `shellspan`.`shell_commands`
AS SELECT
    TraceId AS session_id,
    SpanId AS span_id,
    Timestamp AS start_time,
    Duration AS duration_ns,
    toUInt64OrZero(SpanAttributes['shell.command.seq']) AS seq,
    SpanAttributes['process.command_line'] AS command,
    SpanAttributes['shell.command.name'] AS command_name,
    SpanAttributes['shell.cwd'] AS cwd,
    toInt64OrNull(SpanAttributes['process.exit.code']) AS exit_code,
    StatusCode AS status,
    SpanAttributes['shell.command.redacted'] = 'true' AS redacted,
    if(SpanAttributes['user.name'] != '', SpanAttributes['user.name'], ResourceAttributes['user.name']) AS user_name,
    if(SpanAttributes['host.name'] != '', SpanAttributes['host.name'], ResourceAttributes['host.name']) AS host_name
FROM `shellspan`.`otel_traces`
WHERE SpanName = 'shell.command';
