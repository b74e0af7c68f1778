-- The index of the sessions stored before it existed (runs once, with its migration).
INSERT INTO {{ name shell_session_index }}
SELECT start_time, session_id, last_seen, ended, user_name, host_name, shell_type, component_name
FROM {{ name shell_sessions }}
