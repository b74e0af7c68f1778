-- The columns of shell_commands from command spans (shell_commands_mv and the migration's
-- backfill select them), with the identity that sent each command.
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
    {{ attr HOST_NAME }} AS host_name,
    SpanAttributes[{{ semconv ENDUSER_ID }}] AS enduser_id,
    SpanAttributes[{{ semconv AUTH_KEY_ID }}] AS auth_key_id,
    SpanAttributes[{{ semconv AUTH_VERIFIED }}] = 'true' AS verified
