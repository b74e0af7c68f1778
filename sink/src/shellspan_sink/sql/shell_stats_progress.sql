-- How far the rollups are: every hour with sessions updated up to `watermark` (the store's
-- clock, shell_session_updates.updated_at) has been recomputed since.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_progress }}{{ on_cluster }} (
    name String,
    watermark DateTime64(3),
    version UInt64
) ENGINE = {{ engine ReplacingMergeTree version }}
ORDER BY name
