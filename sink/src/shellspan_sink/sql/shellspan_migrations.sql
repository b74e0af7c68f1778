-- The schema versions applied to this database (one row per migration).
CREATE TABLE IF NOT EXISTS {{ name shellspan_migrations }}{{ on_cluster }} (
    version UInt32, name String, applied_at DateTime DEFAULT now()
) ENGINE = {{ engine ReplacingMergeTree }} ORDER BY version
