-- Each block inserted into shell_commands (by its own view) is copied into shell_command_search.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_command_search_mv }}{{ on_cluster }}
TO {{ table shell_command_search }}
AS SELECT start_time, session_id, span_id, seq, command, cwd, exit_code, duration_ns, status, redacted
FROM {{ table shell_commands }}
