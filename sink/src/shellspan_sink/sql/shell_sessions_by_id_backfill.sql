-- The sessions stored before the copy existed (runs once, with its migration).
INSERT INTO {{ name shell_sessions_by_id }} SELECT * FROM {{ name shell_sessions }}
