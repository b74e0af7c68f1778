-- A materialized view replaced by a later migration (its table keeps its rows).
DROP VIEW IF EXISTS {{ table }}{{ on_cluster }} SYNC
