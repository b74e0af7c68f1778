-- Each block inserted into shell_sessions (one row per session it touched) into the index.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_session_index_mv }}{{ on_cluster }}
TO {{ table shell_session_index }}
AS SELECT start_time, session_id, last_seen, ended, first_shell_type, first_user_name,
       first_host_name, first_component_name
FROM {{ table shell_sessions }}
