-- The attributes of each session's start and root spans, by session id in small granules (the
-- raw table keeps them among every span, ordered by name and time).
CREATE TABLE IF NOT EXISTS {{ table shell_session_attributes }}{{ on_cluster }} (
    session_id String,
    span_name LowCardinality(String),
    span_id String,
    resource_attributes Map(LowCardinality(String), String),
    span_attributes Map(LowCardinality(String), String)
) ENGINE = {{ engine ReplacingMergeTree }}
ORDER BY (session_id, span_name, span_id)
SETTINGS index_granularity = 64, min_compress_block_size = 4096, max_compress_block_size = 16384
