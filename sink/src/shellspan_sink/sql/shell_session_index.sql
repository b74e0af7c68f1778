-- Sessions by start time, for the sessions list, the live views and the rollups: one row per
-- session and insert block, copied from the rows inserted into shell_sessions and never merged
-- across blocks. A row's start_time is the earliest span of its block, so it is never earlier
-- than its session's start (the minimum over the session's rows): the newest sessions are found
-- among the newest rows, and their exact values are then read by id. The first_* columns are
-- those of shell_sessions (the identity fields lists filter on, as (order, value) tuples).
CREATE TABLE IF NOT EXISTS {{ table shell_session_index }}{{ on_cluster }} (
    start_time DateTime64(9),
    session_id String,
    last_seen DateTime64(9),
    ended UInt8,
    first_shell_type {{ first_type }},
    first_user_name {{ first_type }},
    first_host_name {{ first_type }},
    first_component_name {{ first_type }},
    INDEX idx_last_seen last_seen TYPE minmax GRANULARITY 1
) ENGINE = {{ engine MergeTree }}
PARTITION BY toYYYYMM(start_time)
ORDER BY (start_time, session_id)
{{ ttl start_time }}
