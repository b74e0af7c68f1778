-- Command spans into shell_commands, with the identity that sent them (migration 2).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_commands_mv }}{{ on_cluster }}
TO {{ table shell_commands }}
AS SELECT
{{ include shell_commands_rows }}
FROM {{ table otel_traces }}
WHERE SpanName = {{ semconv SPAN_COMMAND }}
