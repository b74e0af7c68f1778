-- Nested sessions by the session that started them: each start or root span that names a
-- parent session, ordered by that parent (the raw table keeps them among all spans, by name
-- and time), in small granules.
CREATE TABLE IF NOT EXISTS {{ table shell_session_children }}{{ on_cluster }} (
    parent_session_id String,
    session_id String,
    span_id String,
    started DateTime64(9),
    parent_span_id String
) ENGINE = {{ engine ReplacingMergeTree }}
ORDER BY (parent_session_id, session_id, span_id)
SETTINGS index_granularity = 64, min_compress_block_size = 4096, max_compress_block_size = 16384
