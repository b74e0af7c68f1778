-- shell_stats_hourly_commands merged per day (UTC), versioned and marked the same way.
CREATE TABLE IF NOT EXISTS {{ table shell_stats_daily_commands }}{{ on_cluster }} (
    day Date,
    command_name String,
    version UInt64,
    runs UInt64,
    failures UInt64,
    durations AggregateFunction(quantile(0.5), UInt64)
) ENGINE = {{ engine ReplacingMergeTree version }}
PARTITION BY toYYYYMM(day)
ORDER BY (day, command_name)
