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
# Every command again, in time order with text indexes (command search), and the view filling it
# from COMMANDS.
COMMAND_SEARCH = "shell_command_search"
COMMAND_SEARCH_MV = "shell_command_search_mv"
# Tags and notes added to sessions after the fact (append-only).
ANNOTATIONS = "shell_annotations"
# Who read which session's commands, when, and through which door.
ACCESS_LOG = "shell_access_log"
# Every log record (terminal recordings), with the contrib ClickHouse exporter's columns.
OTEL_LOGS = "otel_logs"
# One row per recorded chunk of terminal I/O, keyed by (session, seq), and the view filling it.
RECORDINGS = "shell_recordings"
RECORDINGS_MV = "shell_recordings_mv"

# Sessions by start time (one row per session and insert block), and the view filling it from
# the rows inserted into SESSIONS.
SESSION_INDEX = "shell_session_index"
SESSION_INDEX_MV = "shell_session_index_mv"
# shell_sessions in small granules, for reads by session id, and the view filling it.
SESSIONS_BY_ID = "shell_sessions_by_id"
SESSIONS_BY_ID_MV = "shell_sessions_by_id_mv"
# The attributes of each session's start and root spans, by session id, and the view filling it.
SESSION_ATTRIBUTES = "shell_session_attributes"
SESSION_ATTRIBUTES_MV = "shell_session_attributes_mv"
# Nested sessions by the session that started them, and the view filling it.
SESSION_CHILDREN = "shell_session_children"
SESSION_CHILDREN_MV = "shell_session_children_mv"
# When each session last received spans (store clock), and the view filling it.
SESSION_UPDATES = "shell_session_updates"
SESSION_UPDATES_MV = "shell_session_updates_mv"
# Rollups for the stats (rollups.py): sessions per hour (and day) and identity, commands per hour
# (and day) and name, each session as last counted (by start, and its start by id), and how far
# they are.
STATS_HOURLY = "shell_stats_hourly"
STATS_HOURLY_COMMANDS = "shell_stats_hourly_commands"
STATS_DAILY = "shell_stats_daily"
STATS_DAILY_COMMANDS = "shell_stats_daily_commands"
STATS_SESSIONS = "shell_stats_sessions"
STATS_SESSION_STARTS = "shell_stats_session_starts"
STATS_PROGRESS = "shell_stats_progress"


ALL = (OTEL_TRACES, TRACE_ID_TS, TRACE_ID_TS_MV, SESSIONS, SESSIONS_MV, COMMANDS, COMMANDS_MV,
       MIGRATIONS, COMMAND_SEARCH, COMMAND_SEARCH_MV, ANNOTATIONS, ACCESS_LOG, OTEL_LOGS,
       RECORDINGS, RECORDINGS_MV, SESSION_INDEX, SESSION_INDEX_MV, SESSIONS_BY_ID,
       SESSIONS_BY_ID_MV, SESSION_ATTRIBUTES, SESSION_ATTRIBUTES_MV, SESSION_CHILDREN,
       SESSION_CHILDREN_MV, SESSION_UPDATES, SESSION_UPDATES_MV, STATS_HOURLY,
       STATS_HOURLY_COMMANDS, STATS_DAILY, STATS_DAILY_COMMANDS, STATS_SESSIONS,
       STATS_SESSION_STARTS, STATS_PROGRESS)

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
