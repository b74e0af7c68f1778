-- Tags and a note added to a session after the fact, with who added them and when. Append-only:
-- an annotation is never changed; a later one may supersede it (its `supersedes` names the
-- earlier annotation_id). A retried insert of the same annotation collapses under FINAL.
CREATE TABLE IF NOT EXISTS {{ table shell_annotations }}{{ on_cluster }} (
    annotation_id String,
    session_id String,
    created_at DateTime64(3),
    author String,
    author_verified UInt8,
    tags Array(String),
    note String,
    ticket String,
    reason String,
    reviewer String,
    supersedes String
) ENGINE = {{ engine ReplacingMergeTree }}
ORDER BY (session_id, created_at, annotation_id)
{{ ttl created_at }}
