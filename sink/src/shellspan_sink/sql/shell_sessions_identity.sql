-- Migration 2: a session's identity from one span, and its owner (see shell_sessions_rows.sql).
ALTER TABLE {{ table shell_sessions }}{{ on_cluster }}
    ADD COLUMN IF NOT EXISTS identity AggregateFunction(argMin, {{ identity_type }}, {{ first_key_type }}),
    ADD COLUMN IF NOT EXISTS owner AggregateFunction(argMin, {{ owner_type }}, Tuple(DateTime64(9), DateTime64(9))),
    ADD COLUMN IF NOT EXISTS first_shell_type {{ first_type }},
    ADD COLUMN IF NOT EXISTS first_user_name {{ first_type }},
    ADD COLUMN IF NOT EXISTS first_host_name {{ first_type }},
    ADD COLUMN IF NOT EXISTS first_component_name {{ first_type }}
