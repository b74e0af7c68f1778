-- The sessions that started in each hour, per user, host, shell type, component and whether they
-- ended, computed exactly from shell_sessions (rollups.py) and recomputed whenever one of them
-- receives spans. Each computation of an hour writes all its rows with one version, plus a
-- marker row (ended = 255), in one insert; queries read an hour's newest version only.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_hourly }}{{ on_cluster }} (
    hour DateTime('UTC'),
    user_name String,
    host_name String,
    shell_type String,
    component_name String,
    ended UInt8,
    version UInt64,
    sessions UInt64,
    commands UInt64,
    failed_commands UInt64,
    durations AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    duration_buckets Array(UInt64)
) ENGINE = {{ engine ReplacingMergeTree version }}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, user_name, host_name, shell_type, component_name, ended)
