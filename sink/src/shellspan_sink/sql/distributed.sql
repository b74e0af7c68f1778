-- Cluster mode: the canonical name over every shard's local table, sharded by a key of the row.
CREATE TABLE IF NOT EXISTS {{ name }}{{ on_cluster }} AS {{ table }} ENGINE = Distributed({{ cluster_name }}, {{ database_name }}, {{ table_name }}, {{ sharding_key }})
