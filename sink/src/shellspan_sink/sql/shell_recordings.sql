-- One row per recorded chunk of terminal I/O, in playback order: (session, seq) is unique, so a
-- re-delivered record replaces its first copy (read it with FINAL). The payload is the bulk of
-- the table and compresses well (terminal output repeats itself): strong ZSTD on it.
CREATE TABLE IF NOT EXISTS {{ table shell_recordings }}{{ on_cluster }} (
    session_id String,
    seq UInt64,
    time DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    event LowCardinality(String),
    data String CODEC(ZSTD(12)),
    redacted UInt8,
    dropped_bytes UInt64,
    term LowCardinality(String),
    command String CODEC(ZSTD(1))
) ENGINE = {{ engine ReplacingMergeTree }}
PARTITION BY toYYYYMM(time)
ORDER BY (session_id, seq)
{{ ttl time }}
