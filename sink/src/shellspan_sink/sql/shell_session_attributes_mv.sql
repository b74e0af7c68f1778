CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_session_attributes_mv }}{{ on_cluster }}
TO {{ table shell_session_attributes }}
AS SELECT TraceId AS session_id, SpanName AS span_name, SpanId AS span_id,
          ResourceAttributes AS resource_attributes, SpanAttributes AS span_attributes
FROM {{ table otel_traces }}
WHERE SpanName IN ({{ semconv SPAN_SESSION_START }}, {{ semconv SPAN_SESSION }})
