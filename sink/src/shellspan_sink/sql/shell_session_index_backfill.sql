-- The index of the sessions stored before it existed (runs once, with its migration).
INSERT INTO {{ name shell_session_index }}
SELECT start_time, session_id, last_seen, ended, first_shell_type, first_user_name,
       first_host_name, first_component_name
FROM {{ name shell_sessions }}
