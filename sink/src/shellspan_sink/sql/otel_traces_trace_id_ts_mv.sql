CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table otel_traces_trace_id_ts_mv }}{{ on_cluster }}
TO {{ table otel_traces_trace_id_ts }}
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {{ table otel_traces }}
WHERE TraceId != ''
GROUP BY TraceId
