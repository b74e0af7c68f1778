-- The attributes of the sessions stored before the table existed (runs once).
INSERT INTO {{ name shell_session_attributes }}
SELECT TraceId, SpanName, SpanId, ResourceAttributes, SpanAttributes
FROM {{ name otel_traces }}
WHERE SpanName IN ({{ semconv SPAN_SESSION_START }}, {{ semconv SPAN_SESSION }})
