-- shell_stats_hourly merged per day (UTC): fewer, larger quantile states for queries over many
-- days, with the sessions per hour of the day kept as a 24-element array. Recomputed from the
-- hourly rows whenever one of its hours is; versioned and marked the same way.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_daily }}{{ on_cluster }} (
    day Date,
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
    duration_buckets Array(UInt64),
    sessions_by_hour Array(UInt64)
) ENGINE = {{ engine ReplacingMergeTree version }}
PARTITION BY toYYYYMM(day)
ORDER BY (day, user_name, host_name, shell_type, component_name, ended)
