-- Migration 2: the identity that sent each command.
ALTER TABLE {{ table shell_commands }}{{ on_cluster }}
    ADD COLUMN IF NOT EXISTS enduser_id String,
    ADD COLUMN IF NOT EXISTS auth_key_id String,
    ADD COLUMN IF NOT EXISTS verified UInt8
