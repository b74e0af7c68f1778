CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_session_updates_mv }}{{ on_cluster }}
TO {{ table shell_session_updates }}
AS SELECT now64(3) AS updated_at, session_id
FROM {{ table shell_sessions }}
