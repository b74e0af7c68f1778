-- Recording records (those with a seq) into shell_recordings, from whichever path filled
-- otel_logs: the sink or the contrib exporter.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_recordings_mv }}{{ on_cluster }}
TO {{ table shell_recordings }}
AS SELECT
    TraceId AS session_id,
    toUInt64OrZero(LogAttributes[{{ semconv RECORDING_SEQ }}]) AS seq,
    Timestamp AS time,
    SpanId AS span_id,
    LogAttributes[{{ semconv RECORDING_EVENT }}] AS event,
    Body AS data,
    LogAttributes[{{ semconv RECORDING_REDACTED }}] = 'true' AS redacted,
    toUInt64OrZero(LogAttributes[{{ semconv RECORDING_DROPPED_BYTES }}]) AS dropped_bytes,
    LogAttributes[{{ semconv RECORDING_TERM }}] AS term,
    LogAttributes[{{ semconv RECORDING_COMMAND }}] AS command
FROM {{ table otel_logs }}
WHERE TraceId != '' AND seq > 0
    AND LogAttributes[{{ semconv RECORDING_EVENT }}] IN ('o', 'i', 'r', 'm')
