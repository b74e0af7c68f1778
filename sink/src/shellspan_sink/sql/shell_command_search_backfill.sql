-- The commands stored before the search table existed (a re-delivered copy collapses under FINAL).
INSERT INTO {{ name shell_command_search }}
SELECT start_time, session_id, span_id, seq, command, cwd, exit_code, duration_ns, status, redacted
FROM {{ name shell_commands }}
