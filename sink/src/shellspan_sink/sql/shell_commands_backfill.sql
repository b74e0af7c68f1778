-- Migration 2: the commands already stored, with their identity columns (a command's row
-- replaces its first copy: the table is a ReplacingMergeTree read with FINAL).
INSERT INTO {{ name shell_commands }}
SELECT
{{ include shell_commands_rows }}
FROM {{ name otel_traces }}
WHERE SpanName = {{ semconv SPAN_COMMAND }}
