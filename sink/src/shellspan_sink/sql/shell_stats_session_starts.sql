-- Where each session is in shell_stats_sessions (its start as last counted), by session id.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_session_starts }}{{ on_cluster }} (
    session_id String,
    start_time DateTime64(9),
    version UInt64
) ENGINE = {{ engine ReplacingMergeTree version }}
ORDER BY session_id
SETTINGS index_granularity = 64, min_compress_block_size = 4096, max_compress_block_size = 16384
