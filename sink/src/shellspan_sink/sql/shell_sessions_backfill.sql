-- Migration 2: the sessions already stored, derived again with the identity and owner states.
-- Every column aggregates idempotently (min, max, argMin, uniqExact of span ids), so rows that
-- are derived twice change nothing.
INSERT INTO {{ name shell_sessions }}
SELECT
{{ include shell_sessions_rows }}
FROM {{ name otel_traces }}
WHERE SpanName IN {{ semconv SESSION_SPAN_NAMES }}
GROUP BY TraceId
