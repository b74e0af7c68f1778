-- shell_sessions again, in granules of 64 rows instead of 8192: a query that reads a few
-- hundred sessions by id (a page of the list, one session, the live views) reads a few hundred
-- small granules here, where in shell_sessions it would read nearly every large one. Filled
-- from the rows inserted into shell_sessions, so it holds the same values; read it grouped by
-- session_id, as shell_sessions.
CREATE TABLE IF NOT EXISTS {{ table shell_sessions_by_id }}{{ on_cluster }}
AS {{ table shell_sessions }}
ENGINE = {{ engine AggregatingMergeTree }}
ORDER BY session_id
SETTINGS index_granularity = 64, min_compress_block_size = 4096, max_compress_block_size = 16384
