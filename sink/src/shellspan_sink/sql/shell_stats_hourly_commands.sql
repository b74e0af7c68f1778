-- The commands of the sessions that started in each hour, per command name; computed and
-- versioned with shell_stats_hourly (the marker row has an empty command name).
CREATE TABLE IF NOT EXISTS {{ table shell_stats_hourly_commands }}{{ on_cluster }} (
    hour DateTime('UTC'),
    command_name String,
    version UInt64,
    runs UInt64,
    failures UInt64,
    durations AggregateFunction(quantile(0.5), UInt64)
) ENGINE = {{ engine ReplacingMergeTree version }}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, command_name)
