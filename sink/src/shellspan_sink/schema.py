"""The schema: its SQL templates (``sql/*.sql``, one per table and view), the renderer that fills
them with typed options, and the versioned migrations built from them.

The raw table keeps the column names and types of the OpenTelemetry Collector contrib ClickHouse
exporter's ``otel_traces`` table, so the contrib exporter, Grafana's ClickHouse data source and the
sink can share it. Two departures, both for exactly-once query results:

* the engine is ``ReplacingMergeTree`` and the sorting key ends with ``TraceId, SpanId``, so a
  re-delivered span collapses into its first copy (queries read with ``FINAL``);
* the derived tables are filled by materialized views from the raw table, never by the sink
  directly, so every ingestion path (sink or contrib exporter) yields the same sessions.

Session id = trace id (one trace per shell session).

Cluster mode writes ``*_local`` replicated tables on every node plus ``Distributed`` tables under
the canonical names, all ``ON CLUSTER``; queries use the canonical names in both modes. Rows are
sharded by trace id so a session's spans, and their deduplication, stay on one shard.

Templates are plain SQL with placeholders, ``{{ name }}`` or ``{{ name ARG }}``:

``database``        the database, quoted
``on_cluster``      `` ON CLUSTER `NAME` `` on a cluster, else nothing
``table [T]``       table or view ``T`` as it holds data on each node (``T_local`` on a cluster);
                    without ``T``, the object the template creates
``name [T]``        ``T`` under its canonical name, the one queries and inserts use
``engine KIND [C...]`` the MergeTree-family ``KIND`` of the table the template creates, with
                    up to two engine columns (``ReplacingMergeTree version is_deleted``:
                    ``ReplacingMergeTree(version, is_deleted)``); on a cluster
                    ``ReplicatedKIND('/clickhouse/tables/{shard}/DB/T_local', '{replica}'[, C...])``
``ttl COLUMN``      ``TTL toDateTime(COLUMN) + toIntervalDay(N)`` when a TTL is set, else nothing
``semconv NAME``    ``shellspan.semconv.NAME`` as a string literal (a tuple: a list in parentheses)
``attr NAME``       the attribute ``semconv.NAME`` from the span's attributes, else its resource's
``cluster_name``, ``database_name``, ``table_name``, ``sharding_key``
                    (``distributed.sql``) the arguments of the ``Distributed`` engine

Table names must be in ``tables.ALL``; database and cluster names are checked identifiers. Nothing
a client sends ever reaches a template. An applied migration never changes: a schema change is a
new migration with its own templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from shellspan import semconv

from . import tables
from .tables import check_identifier

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)(?:\s+([A-Za-z0-9_]+))?((?:\s+[a-z_]+){0,2})\s*\}\}")
_ENGINE = re.compile(r"^[A-Za-z]*MergeTree$")


@dataclass(frozen=True)
class SchemaOptions:
    database: str = "shellspan"
    cluster: str | None = None
    ttl_days: int = 0  # 0 keeps data forever

    def __post_init__(self) -> None:
        check_identifier(self.database)
        if self.cluster is not None:
            check_identifier(self.cluster)
        if not isinstance(self.ttl_days, int) or self.ttl_days < 0:
            raise ValueError(f"ttl_days must be a whole number of days >= 0, not {self.ttl_days!r}")

    def name(self, table: str) -> str:
        """Fully qualified name that queries and inserts use in both modes."""
        return f"`{self.database}`.`{tables.registered(table)}`"

    def local(self, table: str) -> str:
        """Fully qualified name of the object that holds data (the replicated one on a cluster)."""
        suffix = tables.LOCAL_SUFFIX if self.cluster else ""
        return f"`{self.database}`.`{tables.registered(table)}{suffix}`"


def literal(value: str) -> str:
    """`value` as a ClickHouse string literal (for names the code itself holds, never input)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _semconv(name: str) -> str | tuple[str, ...]:
    value = getattr(semconv, name, None) if name.isupper() else None
    if not isinstance(value, (str, tuple)):
        raise ValueError(f"semconv has no name {name!r}")
    return value


@dataclass(frozen=True)
class _Context:
    """What one rendering knows: the options, the object created, the Distributed key."""

    options: SchemaOptions
    creates: str | None
    sharding_key: str | None = None

    def target(self, arg: str | None) -> str:
        if arg:
            return arg
        if self.creates is None:
            raise ValueError("this template creates no table: name one")
        return self.creates

    def engine(self, kind: str | None, *columns: str) -> str:
        if not kind or not _ENGINE.match(kind) or kind.startswith("Replicated"):
            raise ValueError(f"engine must name a MergeTree engine, not {kind!r}")
        o, table = self.options, self.target(None)
        if not o.cluster:
            return f"{kind}({', '.join(columns)})" if columns else kind
        path = f"/clickhouse/tables/{{shard}}/{o.database}/{table}{tables.LOCAL_SUFFIX}"
        args = [literal(path), "'{replica}'", *columns]
        return f"Replicated{kind}({', '.join(args)})"

    def ttl(self, column: str | None) -> str:
        if not column:
            raise ValueError("ttl needs a column")
        if not self.options.ttl_days:
            return ""
        return f"TTL toDateTime({column}) + toIntervalDay({int(self.options.ttl_days)})"

    def attr(self, name: str | None) -> str:
        key = literal(str(_semconv(name or "")))
        return f"if(SpanAttributes[{key}] != '', SpanAttributes[{key}], ResourceAttributes[{key}])"

    def semconv(self, name: str | None) -> str:
        value = _semconv(name or "")
        if isinstance(value, tuple):
            return "(" + ", ".join(literal(v) for v in value) + ")"
        return literal(value)

    def cluster_literal(self, _arg: str | None) -> str:
        if not self.options.cluster:
            raise ValueError("cluster_name is only defined on a cluster")
        return literal(self.options.cluster)

    def key(self, _arg: str | None) -> str:
        if not self.sharding_key:
            raise ValueError("sharding_key is only defined for a Distributed table")
        return self.sharding_key


_PLACEHOLDERS: dict[str, Callable[[_Context, str | None], str]] = {
    "database": lambda c, _: f"`{c.options.database}`",
    "on_cluster": lambda c, _: f" ON CLUSTER `{c.options.cluster}`" if c.options.cluster else "",
    "table": lambda c, arg: c.options.local(c.target(arg)),
    "name": lambda c, arg: c.options.name(c.target(arg)),
    "engine": _Context.engine,
    "ttl": _Context.ttl,
    "semconv": _Context.semconv,
    "attr": _Context.attr,
    "cluster_name": _Context.cluster_literal,
    "database_name": lambda c, _: literal(c.options.database),
    "table_name": lambda c, arg: literal(
        c.target(arg) + (tables.LOCAL_SUFFIX if c.options.cluster else "")),
    "sharding_key": _Context.key,
}


def template(name: str) -> str:
    """The text of ``sql/<name>``, without its full-line comments."""
    text = resources.files(__package__).joinpath("sql", name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def render(name: str, options: SchemaOptions, creates: str | None = None,
           sharding_key: str | None = None) -> str:
    """The statement of template `name` for `options`; `creates` is the table or view it makes."""
    return render_text(template(name), options, creates, sharding_key, name=name)


def render_text(text: str, options: SchemaOptions, creates: str | None = None,
                sharding_key: str | None = None, *, name: str = "?") -> str:
    context = _Context(options, creates and tables.registered(creates), sharding_key)

    def fill(match: re.Match) -> str:
        placeholder, arg, more = match.group(1), match.group(2), match.group(3).split()
        if placeholder not in _PLACEHOLDERS:
            raise ValueError(f"sql/{name}: unknown placeholder {match.group(0)!r}")
        if more:
            if placeholder != "engine":
                raise ValueError(f"sql/{name}: {match.group(0)!r} takes one argument")
            return context.engine(arg, *more)
        return _PLACEHOLDERS[placeholder](context, arg)

    statement = _PLACEHOLDER.sub(fill, text).strip()
    if "{{" in statement or "}}" in statement:
        raise ValueError(f"sql/{name}: malformed placeholder left in {statement[:200]!r}")
    return statement


@dataclass(frozen=True)
class Step:
    """One statement from ``sql/<template>``; a table that holds rows names its sharding key,
    and on a cluster it gets a ``Distributed`` table over it."""

    template: str
    creates: str | None = None
    shard_by: str | None = None

    def statements(self, options: SchemaOptions) -> list[str]:
        out = [render(self.template, options, self.creates)]
        if options.cluster and self.shard_by:
            out.append(render("distributed.sql", options, self.creates, self.shard_by))
        return out


def create(table: str, shard_by: str | None = None) -> Step:
    """The step that creates `table` from its own template, ``sql/<table>.sql``."""
    return Step(f"{table}.sql", table, shard_by)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    steps: tuple[Step, ...]

    def statements(self, options: SchemaOptions) -> list[str]:
        return [s for step in self.steps for s in step.statements(options)]


_BY_TRACE = "cityHash64(TraceId)"
_BY_SESSION = "cityHash64(session_id)"  # the session id is the trace id
_BY_HOUR = "toUInt32(hour)"  # an hour's rollup rows stay together, so a version is one insert
_BY_DAY = "toUInt32(day)"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", (
        Step("database.sql"),
        create(tables.OTEL_TRACES, _BY_TRACE),
        create(tables.TRACE_ID_TS, _BY_TRACE),
        create(tables.TRACE_ID_TS_MV),
        create(tables.SESSIONS, _BY_SESSION),
        create(tables.SESSIONS_MV),
        create(tables.COMMANDS, _BY_SESSION),
        create(tables.COMMANDS_MV),
    )),
    Migration(4, "session lookups by time and by id, update log, hourly rollups", (
        create(tables.SESSION_INDEX, _BY_SESSION),
        create(tables.SESSION_INDEX_MV),
        Step("shell_session_index_backfill.sql"),
        create(tables.SESSIONS_BY_ID, _BY_SESSION),
        create(tables.SESSIONS_BY_ID_MV),
        Step("shell_sessions_by_id_backfill.sql"),
        create(tables.SESSION_ATTRIBUTES, _BY_SESSION),
        create(tables.SESSION_ATTRIBUTES_MV),
        Step("shell_session_attributes_backfill.sql"),
        create(tables.SESSION_UPDATES, _BY_SESSION),
        create(tables.SESSION_UPDATES_MV),
        create(tables.STATS_HOURLY, _BY_HOUR),
        create(tables.STATS_HOURLY_COMMANDS, _BY_HOUR),
        create(tables.STATS_DAILY, _BY_DAY),
        create(tables.STATS_DAILY_COMMANDS, _BY_DAY),
        create(tables.STATS_SESSIONS, _BY_SESSION),
        create(tables.STATS_SESSION_STARTS, _BY_SESSION),
        create(tables.STATS_PROGRESS, "cityHash64(name)"),
    )),
)


def migrations_table_ddl(options: SchemaOptions) -> list[str]:
    """The database and the table that records applied migrations (created before any runs)."""
    return Step("database.sql").statements(options) + create(tables.MIGRATIONS).statements(options)


def all_statements(options: SchemaOptions) -> list[str]:
    """Every statement `migrate` would run on an empty store, in order (`migrate --print`)."""
    return migrations_table_ddl(options) + [
        s for migration in MIGRATIONS for s in migration.statements(options)]
