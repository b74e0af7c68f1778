-- The columns of shell_sessions from session spans (shell_sessions_mv and the migration's
-- backfill select them). Identity comes from one span: the first stored start, root or
-- heartbeat span, a verified one before any unverified (argMin over that order, never max()
-- over every span), so a later span cannot change who a session shows; the fields lists filter
-- on are also kept alone (first_*: min over (that order, value), cheap to scan). The owner is
-- the first verified identity stored for the session. The max() columns are kept for existing
-- queries. The columns are in the table's order: the backfill inserts them by position.
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
    uniqExactStateIf(cityHash64(SpanId), SpanName = {{ semconv SPAN_COMMAND }} AND StatusCode = 'Error') AS failed_ids,
    argMinStateIf(
        CAST(tuple(ServiceName, {{ attr SHELL_TYPE }}, {{ attr USER_NAME }}, {{ attr HOST_NAME }},
                   {{ attr COMPONENT_NAME }}, {{ attr COMPONENT_VERSION }}, {{ attr TTY }},
                   {{ attr CLIENT_ADDRESS }}, {{ attr PROCESS_PID }},
                   SpanAttributes[{{ semconv ENDUSER_ID }}], SpanAttributes[{{ semconv AUTH_VERIFIED }}] = 'true',
                   SpanAttributes[{{ semconv AUTH_HOST }}], SpanAttributes[{{ semconv AUTH_KEY_ID }}],
                   {{ attr PARENT_SESSION_ID }}, {{ attr PARENT_SPAN_ID }}),
             '{{ identity_type }}'),
        {{ first_key }},
        SpanName != {{ semconv SPAN_COMMAND }}) AS identity,
    argMinStateIf(
        CAST(tuple(SpanAttributes[{{ semconv ENDUSER_ID }}], SpanAttributes[{{ semconv AUTH_KEY_ID }}]),
             '{{ owner_type }}'),
        tuple(now64(9), Timestamp),
        SpanAttributes[{{ semconv AUTH_VERIFIED }}] = 'true') AS owner,
    {{ first SHELL_TYPE }} AS first_shell_type,
    {{ first USER_NAME }} AS first_user_name,
    {{ first HOST_NAME }} AS first_host_name,
    {{ first COMPONENT_NAME }} AS first_component_name
