-- One row per session and insert block, merged by aggregation: always read it grouped by
-- session_id. Command span ids (64-bit hashes) go into uniqExact states, so a re-delivered
-- command span never counts twice.
CREATE TABLE IF NOT EXISTS {{ table shell_sessions }}{{ on_cluster }} (
    session_id String,
    start_time SimpleAggregateFunction(min, DateTime64(9)),
    last_seen SimpleAggregateFunction(max, DateTime64(9)),
    end_time SimpleAggregateFunction(max, DateTime64(9)),
    ended SimpleAggregateFunction(max, UInt8),
    service_name SimpleAggregateFunction(max, String),
    shell_type SimpleAggregateFunction(max, String),
    user_name SimpleAggregateFunction(max, String),
    host_name SimpleAggregateFunction(max, String),
    component_name SimpleAggregateFunction(max, String),
    component_version SimpleAggregateFunction(max, String),
    tty SimpleAggregateFunction(max, String),
    client_address SimpleAggregateFunction(max, String),
    pid SimpleAggregateFunction(max, String),
    exit_reason SimpleAggregateFunction(max, String),
    exit_code SimpleAggregateFunction(max, String),
    enduser_id SimpleAggregateFunction(max, String),
    verified SimpleAggregateFunction(max, UInt8),
    command_ids AggregateFunction(uniqExact, UInt64),
    failed_ids AggregateFunction(uniqExact, UInt64)
) ENGINE = {{ engine AggregatingMergeTree }}
ORDER BY session_id
