-- When each session last received spans, by the store's clock: one row per session and insert
-- block. The live views ask it what changed since their last look; the rollups, which hours to
-- recompute. Rows are kept two days.
CREATE TABLE IF NOT EXISTS {{ table shell_session_updates }}{{ on_cluster }} (
    updated_at DateTime64(3),
    session_id String
) ENGINE = {{ engine MergeTree }}
PARTITION BY toDate(updated_at)
ORDER BY (updated_at, session_id)
TTL toDateTime(updated_at) + toIntervalDay(2)
SETTINGS ttl_only_drop_parts = 1
