"""The names of every table and view of the schema: the one place they are spelled.

Queries, inserts and the migrations use these canonical names. On a cluster the tables that hold
data (and the views that fill them) carry ``LOCAL_SUFFIX`` on each node, under a ``Distributed``
table of the canonical name; ``shellspan_sink.sql`` renders both forms.
"""

from __future__ import annotations

import re

# Every span, with the contrib ClickHouse exporter's columns.
OTEL_TRACES = "otel_traces"
# The contrib exporter's trace-id lookup (min/max timestamp per trace), and the view filling it.
TRACE_ID_TS = "otel_traces_trace_id_ts"
TRACE_ID_TS_MV = "otel_traces_trace_id_ts_mv"
# One row per session (after merging), and the view filling it from OTEL_TRACES.
SESSIONS = "shell_sessions"
SESSIONS_MV = "shell_sessions_mv"
# One row per command, and the view filling it from OTEL_TRACES.
COMMANDS = "shell_commands"
COMMANDS_MV = "shell_commands_mv"
# The schema versions applied to this database.
MIGRATIONS = "shellspan_migrations"
# Every log record (terminal recordings), with the contrib ClickHouse exporter's columns.
OTEL_LOGS = "otel_logs"
# One row per recorded chunk of terminal I/O, keyed by (session, seq), and the view filling it.
RECORDINGS = "shell_recordings"
RECORDINGS_MV = "shell_recordings_mv"

ALL = (OTEL_TRACES, TRACE_ID_TS, TRACE_ID_TS_MV, SESSIONS, SESSIONS_MV, COMMANDS, COMMANDS_MV,
       MIGRATIONS, OTEL_LOGS, RECORDINGS, RECORDINGS_MV)

LOCAL_SUFFIX = "_local"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str) -> str:
    """Identifiers (database, cluster, table) cannot be bound as parameters, so they are checked."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"invalid ClickHouse identifier: {name!r}")
    return name


def registered(name: str) -> str:
    """`name` if it is one of the schema's tables or views, else ValueError."""
    if name not in ALL:
        raise ValueError(f"{name!r} is not a table of the shellspan schema ({', '.join(ALL)})")
    return name


for _name in ALL:
    check_identifier(_name)
