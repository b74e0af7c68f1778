-- One row per command span; read it with FINAL (a re-delivered span replaces its first copy).
CREATE TABLE IF NOT EXISTS {{ table shell_commands }}{{ on_cluster }} (
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
) ENGINE = {{ engine ReplacingMergeTree }}
PARTITION BY toYYYYMM(start_time)
ORDER BY (session_id, span_id)
{{ ttl start_time }}
