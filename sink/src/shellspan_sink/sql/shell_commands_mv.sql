CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_commands_mv }}{{ on_cluster }}
TO {{ table shell_commands }}
AS SELECT
    TraceId AS session_id,
    SpanId AS span_id,
    Timestamp AS start_time,
    Duration AS duration_ns,
    toUInt64OrZero(SpanAttributes[{{ semconv COMMAND_SEQ }}]) AS seq,
    SpanAttributes[{{ semconv COMMAND_LINE }}] AS command,
    SpanAttributes[{{ semconv COMMAND_NAME }}] AS command_name,
    SpanAttributes[{{ semconv CWD }}] AS cwd,
    toInt64OrNull(SpanAttributes[{{ semconv EXIT_CODE }}]) AS exit_code,
    StatusCode AS status,
    SpanAttributes[{{ semconv COMMAND_REDACTED }}] = 'true' AS redacted,
    {{ attr USER_NAME }} AS user_name,
    {{ attr HOST_NAME }} AS host_name
FROM {{ table otel_traces }}
WHERE SpanName = {{ semconv SPAN_COMMAND }}
