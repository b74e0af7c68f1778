CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_session_children_mv }}{{ on_cluster }}
TO {{ table shell_session_children }}
AS SELECT SpanAttributes[{{ semconv PARENT_SESSION_ID }}] AS parent_session_id,
          TraceId AS session_id, SpanId AS span_id, Timestamp AS started,
          SpanAttributes[{{ semconv PARENT_SPAN_ID }}] AS parent_span_id
FROM {{ table otel_traces }}
WHERE SpanName IN ({{ semconv SPAN_SESSION_START }}, {{ semconv SPAN_SESSION }})
  AND SpanAttributes[{{ semconv PARENT_SESSION_ID }}] != ''
