-- Who read which session's commands, when, and through which door (api, cli, ui, mcp). Events
-- carry an id, so one inserted twice (replayed after a crash) collapses under FINAL.
CREATE TABLE IF NOT EXISTS {{ table shell_access_log }}{{ on_cluster }} (
    event_id String,
    time DateTime64(3),
    subject String,
    verified UInt8,
    door LowCardinality(String),
    action LowCardinality(String),
    session_ids Array(String),
    detail String,
    client_address String
) ENGINE = {{ engine ReplacingMergeTree }}
PARTITION BY toYYYYMM(time)
ORDER BY (time, event_id)
{{ ttl time }}
