"""A session's shell-state snapshots: the ``shell.snapshot`` events of its start, heartbeat and
root spans, in time order, as the session API answers them (``snapshots`` of
``GET /api/sessions/{id}``). Values are bound parameters; spans of another identity than the
one the session shows are left out, as for its attributes.
"""

from __future__ import annotations

import json
from typing import Any

from shellspan import semconv as sc

from . import tables
from .queries import iso
from .store import Store

_LISTS = (sc.ENV_CHANGED, sc.ENV_REMOVED, sc.JOBS)
_FLOATS = {sc.CPU_USER_S: "cpu_user_s", sc.CPU_SYSTEM_S: "cpu_system_s"}
_TEXTS = {sc.CWD: "cwd", sc.ENV_SOURCE: "env_source", sc.VENV: "venv",
          sc.CONDA_ENV: "conda_env", sc.GIT_BRANCH: "git_branch"}
SPANS = (sc.SPAN_SESSION_START, sc.SPAN_HEARTBEAT, sc.SPAN_SESSION)
MAX_SNAPSHOTS = 1000


def _list(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def snapshot_dict(time_ns: int, span_name: str, attrs: dict[str, str]) -> dict[str, Any]:
    """One event as the API shows it: lists and numbers decoded, the environment's changes as
    a name -> value object."""
    out: dict[str, Any] = {"time": iso(time_ns), "kind": attrs.get(sc.SNAPSHOT_KIND, ""),
                           "span": span_name}
    for key, name in _TEXTS.items():
        out[name] = attrs.get(key) or None
    changed = {}
    for entry in _list(attrs.get(sc.ENV_CHANGED)):
        name, _, value = entry.partition("=")
        changed[name] = value
    out["env_changed"] = changed if sc.ENV_CHANGED in attrs else None
    out["env_removed"] = _list(attrs.get(sc.ENV_REMOVED)) if sc.ENV_REMOVED in attrs else None
    out["jobs"] = _list(attrs.get(sc.JOBS))
    dirty = attrs.get(sc.GIT_DIRTY)
    out["git_dirty"] = None if dirty is None else dirty == "true"
    for key, name in _FLOATS.items():
        try:
            out[name] = float(attrs[key]) if key in attrs else None
        except ValueError:
            out[name] = None
    try:
        out["max_rss_kb"] = int(attrs[sc.MAX_RSS_KB]) if sc.MAX_RSS_KB in attrs else None
    except ValueError:
        out["max_rss_kb"] = None
    return out


def session_snapshots(store: Store, session_id: str, identity: tuple[str, bool],
                      span_range: tuple[int, int]) -> list[dict[str, Any]]:
    """The snapshots of a session, oldest first, each once (a re-delivered span repeats its
    events), only from spans of ``identity`` (enduser id, verified). ``span_range`` (ns) bounds
    the spans' start times: the raw table is partitioned by day, not by trace id, so this
    keeps the search to the session's days."""
    rows = store.query(
        "SELECT SpanId, SpanName, toUnixTimestamp64Nano(ev.1) AS t, ev.3 AS attrs, "
        f"SpanAttributes[{{enduser:String}}], SpanAttributes[{{verified:String}}] "
        f"FROM {store.options.name(tables.OTEL_TRACES)} "
        "ARRAY JOIN arrayZip(Events.Timestamp, Events.Name, Events.Attributes) AS ev "
        "WHERE TraceId = {id:String} AND SpanName IN {names:Array(String)} "
        "AND Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) "
        "AND Timestamp <= fromUnixTimestamp64Nano({hi:Int64}) "
        "AND ev.2 = {event:String} ORDER BY t, SpanId LIMIT {limit:UInt32}",
        {"id": session_id, "names": list(SPANS), "event": sc.EVENT_SNAPSHOT,
         "enduser": sc.ENDUSER_ID, "verified": sc.AUTH_VERIFIED,
         "limit": MAX_SNAPSHOTS, "lo": span_range[0], "hi": span_range[1]}).rows
    out, seen = [], set()
    for span_id, name, time_ns, attrs, enduser, verified in rows:
        if (span_id, time_ns) in seen or (enduser, verified == "true") != identity:
            continue
        seen.add((span_id, time_ns))
        out.append(snapshot_dict(int(time_ns), name, dict(attrs)))
    return out
