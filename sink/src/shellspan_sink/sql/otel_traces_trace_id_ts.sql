-- The contrib exporter's trace-id lookup table: Grafana bounds its by-id query with it.
CREATE TABLE IF NOT EXISTS {{ table otel_traces_trace_id_ts }}{{ on_cluster }} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = {{ engine AggregatingMergeTree }}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{{ ttl Start }}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
