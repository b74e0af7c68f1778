-- Every command again, for command search: in time order, so a newest-first page reads the
-- newest rows and stops once it has enough (keyset pages continue from the sorting key), with
-- n-gram bloom filters that skip the granules a rare text cannot be in: one over the lowercased
-- text (substring search, case-insensitive), one over the text as typed (regular expressions),
-- and a bloom filter on the session id. Read it with FINAL: a re-delivered span has the same
-- sorting key and replaces its first copy.
CREATE TABLE IF NOT EXISTS {{ table shell_command_search }}{{ on_cluster }} (
    start_time DateTime64(9),
    session_id String,
    span_id String,
    seq UInt64,
    command String,
    cwd String,
    exit_code Nullable(Int64),
    duration_ns UInt64,
    status LowCardinality(String),
    redacted UInt8,
    INDEX idx_command_folded lowerUTF8(command) TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1,
    INDEX idx_command command TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {{ engine ReplacingMergeTree }}
PARTITION BY toYYYYMM(start_time)
ORDER BY (start_time, session_id, span_id)
{{ ttl start_time }}
