"""The schema: its SQL templates (``sql/*.sql``, one per table and view), the renderer that fills
them with typed options, and the versioned migrations built from them.

The raw tables keep the column names and types of the OpenTelemetry Collector contrib ClickHouse
exporter's ``otel_traces`` and ``otel_logs`` tables, so the contrib exporter, Grafana's ClickHouse
data source and the sink can share them. Two departures, both for exactly-once query results:

* the engine is ``ReplacingMergeTree`` and the sorting key ends with the row's identity
  (``TraceId, SpanId`` for spans; trace id, span id, recording seq and body for log records), so
  a re-delivered span or record collapses into its first copy (queries read with ``FINAL``);
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
``include NAME``    the text of ``sql/NAME.sql``, rendered in the same way (a select list that a
                    view and a migration's backfill share)
``identity_type``, ``owner_type``
                    the named tuple types of a session's identity and owner (``IDENTITY``,
                    ``OWNER``)
``first_key``, ``first_key_type``
                    the order a session's identity is chosen in (verified first, then first
                    stored, start before root before heartbeat, earliest start), and its type
``first NAME``, ``first_type``
                    the attribute ``semconv.NAME`` of the span first in that order, as a
                    ``min`` over (order, value) tuples (a command span never comes first)

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


# A session's identity, taken whole from one of its spans, and its owner: the first verified
# identity stored for it (``shell_sessions_rows.sql``). Names and types of the tuple's fields.
IDENTITY = (("service_name", "String"), ("shell_type", "String"), ("user_name", "String"),
            ("host_name", "String"), ("component_name", "String"),
            ("component_version", "String"), ("tty", "String"), ("client_address", "String"),
            ("pid", "String"), ("enduser_id", "String"), ("verified", "UInt8"),
            ("auth_host", "String"), ("auth_key_id", "String"), ("parent_session_id", "String"),
            ("parent_span_id", "String"))
OWNER = (("enduser_id", "String"), ("key_id", "String"))


FIRST_KEY_TYPE = "Tuple(UInt8, DateTime64(9), UInt8, DateTime64(9))"


def _tuple_type(fields: tuple[tuple[str, str], ...]) -> str:
    return "Tuple(" + ", ".join(f"{name} {kind}" for name, kind in fields) + ")"


def _first_key() -> str:
    """(0 verified / 1 not, stored at, 0 start / 1 root / 2 other, span start)."""
    return (f"tuple(SpanAttributes[{literal(semconv.AUTH_VERIFIED)}] != 'true', now64(9), "
            f"multiIf(SpanName = {literal(semconv.SPAN_SESSION_START)}, 0, "
            f"SpanName = {literal(semconv.SPAN_SESSION)}, 1, 2), Timestamp)")


# Sorts after every real key (whose first element is 0 or 1): what a command span, and a row
# stored before the column existed, hold, so they never name the session.
_NO_FIRST = "tuple(2, toDateTime64(0, 9), 0, toDateTime64(0, 9), '')"


def _first(context: _Context, name: str | None) -> str:
    return (f"min(if(SpanName != {literal(semconv.SPAN_COMMAND)}, "
            f"tupleConcat({_first_key()}, tuple({context.attr(name)})), {_NO_FIRST}))")


@dataclass(frozen=True)
class _Context:
    """What one rendering knows: the options, the object created, the Distributed key, and
    whether ``table`` names the Distributed table (an ALTER both need on a cluster)."""

    options: SchemaOptions
    creates: str | None
    sharding_key: str | None = None
    distributed: bool = False

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
    "table": lambda c, arg: (c.options.name if c.distributed else c.options.local)(c.target(arg)),
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
    "include": lambda c, arg: _render_in(template(f"{arg}.sql"), c, arg or "?"),
    "identity_type": lambda c, _: _tuple_type(IDENTITY),
    "owner_type": lambda c, _: _tuple_type(OWNER),
    "first_key": lambda c, _: _first_key(),
    "first_key_type": lambda c, _: FIRST_KEY_TYPE,
    "first": _first,
    "first_type": lambda c, _: ("SimpleAggregateFunction(min, Tuple(UInt8, DateTime64(9), UInt8, "
                                f"DateTime64(9), String)) DEFAULT {_NO_FIRST}"),
}


def template(name: str) -> str:
    """The text of ``sql/<name>``, without its full-line comments."""
    text = resources.files(__package__).joinpath("sql", name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def render(name: str, options: SchemaOptions, creates: str | None = None,
           sharding_key: str | None = None, distributed: bool = False) -> str:
    """The statement of template `name` for `options`; `creates` is the table or view it makes."""
    return render_text(template(name), options, creates, sharding_key, name=name,
                       distributed=distributed)


def render_text(text: str, options: SchemaOptions, creates: str | None = None,
                sharding_key: str | None = None, *, name: str = "?",
                distributed: bool = False) -> str:
    context = _Context(options, creates and tables.registered(creates), sharding_key, distributed)
    return _render_in(text, context, name)


def _render_in(text: str, context: _Context, name: str) -> str:
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
    and on a cluster it gets a ``Distributed`` table over it. An ALTER that adds columns runs
    on a cluster for the ``Distributed`` table too (`distributed_too`)."""

    template: str
    creates: str | None = None
    shard_by: str | None = None
    distributed_too: bool = False

    def statements(self, options: SchemaOptions) -> list[str]:
        out = [render(self.template, options, self.creates)]
        if options.cluster and self.shard_by:
            out.append(render("distributed.sql", options, self.creates, self.shard_by))
        if options.cluster and self.distributed_too:
            out.append(render(self.template, options, self.creates, distributed=True))
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
    # A session shows the identity of one of its own spans, not max() over all of them; it has
    # an owner; each command keeps the identity that sent it. Existing rows are derived again.
    Migration(2, "session identity from its own span, session owner, command identity", (
        Step("shell_sessions_identity.sql", distributed_too=True),
        Step("drop_view.sql", tables.SESSIONS_MV),
        Step("shell_sessions_mv_2.sql", tables.SESSIONS_MV),
        Step("shell_sessions_backfill.sql"),
        Step("shell_commands_identity.sql", distributed_too=True),
        Step("drop_view.sql", tables.COMMANDS_MV),
        Step("shell_commands_mv_2.sql", tables.COMMANDS_MV),
        Step("shell_commands_backfill.sql"),
    )),
    Migration(3, "command search, annotations, access log", (
        create(tables.COMMAND_SEARCH, _BY_SESSION),
        create(tables.COMMAND_SEARCH_MV),
        Step("shell_command_search_backfill.sql"),
        create(tables.ANNOTATIONS, _BY_SESSION),
        create(tables.ACCESS_LOG, "cityHash64(event_id)"),
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
        create(tables.SESSION_CHILDREN, _BY_SESSION),
        create(tables.SESSION_CHILDREN_MV),
        Step("shell_session_children_backfill.sql"),
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
    Migration(5, "terminal recordings", (
        create(tables.OTEL_LOGS, _BY_TRACE),
        create(tables.RECORDINGS, _BY_SESSION),
        create(tables.RECORDINGS_MV),
    )),
)


def migrations_table_ddl(options: SchemaOptions) -> list[str]:
    """The database and the table that records applied migrations (created before any runs)."""
    return Step("database.sql").statements(options) + create(tables.MIGRATIONS).statements(options)


def all_statements(options: SchemaOptions) -> list[str]:
    """Every statement `migrate` would run on an empty store, in order (`migrate --print`)."""
    return migrations_table_ddl(options) + [
        s for migration in MIGRATIONS for s in migration.statements(options)]
