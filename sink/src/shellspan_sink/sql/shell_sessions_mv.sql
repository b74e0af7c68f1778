-- Session spans into shell_sessions. Identity columns come from the session's start, heartbeat
-- and root spans (never from commands); the end and exit columns from the root span only.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_sessions_mv }}{{ on_cluster }}
TO {{ table shell_sessions }}
AS SELECT
    TraceId AS session_id,
    min(Timestamp) AS start_time,
    max(Timestamp + toIntervalNanosecond(Duration)) AS last_seen,
    max(if(SpanName = {{ semconv SPAN_SESSION }}, Timestamp + toIntervalNanosecond(Duration), toDateTime64(0, 9))) AS end_time,
    max(SpanName = {{ semconv SPAN_SESSION }}) AS ended,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', ServiceName)) AS service_name,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr SHELL_TYPE }})) AS shell_type,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr USER_NAME }})) AS user_name,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr HOST_NAME }})) AS host_name,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr COMPONENT_NAME }})) AS component_name,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr COMPONENT_VERSION }})) AS component_version,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr TTY }})) AS tty,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr CLIENT_ADDRESS }})) AS client_address,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', {{ attr PROCESS_PID }})) AS pid,
    max(if(SpanName = {{ semconv SPAN_COMMAND }}, '', SpanAttributes[{{ semconv ENDUSER_ID }}])) AS enduser_id,
    max(if(SpanName = {{ semconv SPAN_SESSION }}, SpanAttributes[{{ semconv EXIT_REASON }}], '')) AS exit_reason,
    max(if(SpanName = {{ semconv SPAN_SESSION }}, SpanAttributes[{{ semconv EXIT_CODE }}], '')) AS exit_code,
    max(SpanAttributes[{{ semconv AUTH_VERIFIED }}] = 'true') AS verified,
    uniqExactStateIf(cityHash64(SpanId), SpanName = {{ semconv SPAN_COMMAND }}) AS command_ids,
    uniqExactStateIf(cityHash64(SpanId), SpanName = {{ semconv SPAN_COMMAND }} AND StatusCode = 'Error') AS failed_ids
FROM {{ table otel_traces }}
WHERE SpanName IN {{ semconv SESSION_SPAN_NAMES }}
GROUP BY TraceId
