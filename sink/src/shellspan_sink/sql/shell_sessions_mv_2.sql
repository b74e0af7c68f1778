-- Session spans into shell_sessions, with the identity and owner states (migration 2).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_sessions_mv }}{{ on_cluster }}
TO {{ table shell_sessions }}
AS SELECT
{{ include shell_sessions_rows }}
FROM {{ table otel_traces }}
WHERE SpanName IN {{ semconv SESSION_SPAN_NAMES }}
GROUP BY TraceId
