-- The nested sessions stored before the table existed (runs once, with its migration).
INSERT INTO {{ name shell_session_children }}
SELECT SpanAttributes[{{ semconv PARENT_SESSION_ID }}], TraceId, SpanId, Timestamp,
       SpanAttributes[{{ semconv PARENT_SPAN_ID }}]
FROM {{ name otel_traces }}
WHERE SpanName IN ({{ semconv SPAN_SESSION_START }}, {{ semconv SPAN_SESSION }})
  AND SpanAttributes[{{ semconv PARENT_SESSION_ID }}] != ''
