-- Sessions by start time, for the sessions list, the live views and the rollups: one row per
-- session and insert block, copied from the rows inserted into shell_sessions and never merged
-- across blocks. A row's start_time is the earliest span of its block, so it is never earlier
-- than its session's start (the minimum over the session's rows): the newest sessions are found
-- among the newest rows, and their exact values are then read from shell_sessions.
CREATE TABLE IF NOT EXISTS {{ table shell_session_index }}{{ on_cluster }} (
    start_time DateTime64(9),
    session_id String,
    last_seen DateTime64(9),
    ended UInt8,
    user_name LowCardinality(String),
    host_name LowCardinality(String),
    shell_type LowCardinality(String),
    component_name LowCardinality(String),
    INDEX idx_last_seen last_seen TYPE minmax GRANULARITY 1
) ENGINE = {{ engine MergeTree }}
PARTITION BY toYYYYMM(start_time)
ORDER BY (start_time, session_id)
{{ ttl start_time }}
