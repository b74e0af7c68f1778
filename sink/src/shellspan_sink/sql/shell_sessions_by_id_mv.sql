CREATE MATERIALIZED VIEW IF NOT EXISTS {{ table shell_sessions_by_id_mv }}{{ on_cluster }}
TO {{ table shell_sessions_by_id }}
AS SELECT * FROM {{ table shell_sessions }}
