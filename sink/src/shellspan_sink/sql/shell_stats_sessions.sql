-- Each session's values as the rollups last counted them, ordered by start: what a stats query
-- reads for the part of an hour it computes itself, and what an hour's rollup rows are computed
-- from. Rewritten (new version) whenever the session receives spans; a session whose start
-- moved leaves a deletion row (is_deleted = 1) at its old place. Read it with FINAL.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_sessions }}{{ on_cluster }} (
    start_time DateTime64(9),
    session_id String,
    last_seen DateTime64(9),
    end_time DateTime64(9),
    ended UInt8,
    user_name LowCardinality(String),
    host_name LowCardinality(String),
    shell_type LowCardinality(String),
    component_name LowCardinality(String),
    command_count UInt64,
    failed_count UInt64,
    version UInt64,
    is_deleted UInt8
) ENGINE = {{ engine ReplacingMergeTree version is_deleted }}
PARTITION BY toYYYYMM(start_time)
ORDER BY (start_time, session_id)
