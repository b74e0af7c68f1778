"""Reading sessions' commands: showing a session (with its annotations), searching commands and
reading a terminal recording, each read recorded in the access log before its answer leaves.
The API, the web UI, the CLI and the MCP tools all read through here, so none of them reads
unrecorded.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .access_log import SEARCH, SHOW, SQL, AccessEvent, AccessLog, Reader
from .annotations import Annotations
from .queries import QueryError, SessionQueries
from .search import CommandFilter, CommandSearch


class SessionReading:
    def __init__(self, queries: SessionQueries, access: AccessLog) -> None:
        self.queries = queries
        self.access = access
        self.annotations = Annotations(queries.store)
        self.commands = CommandSearch(queries.store)

    def show(self, session_id: str, reader: Reader) -> dict[str, Any] | None:
        """A session with its commands and annotations ({session, commands, annotations})."""
        found = self.queries.get_session(session_id)
        if found is None:
            return None
        sid = found["session"]["session_id"]
        notes = self.annotations.for_session(sid)
        found["session"]["tags"] = notes.tags
        found["annotations"] = notes.history
        self.access.record(AccessEvent.of(reader, SHOW, [sid]))
        return found

    def search(self, flt: CommandFilter, reader: Reader) -> dict[str, Any]:
        """A page of command search hits ({commands, count, next_cursor})."""
        result = self.commands.search(flt)
        detail = {k: v for k, v in asdict(flt).items() if v not in (None, "", False)}
        self.access.record(AccessEvent.of(reader, SEARCH,
                                          [hit["session_id"] for hit in result["commands"]],
                                          {**detail, "hits": result["count"]}))
        return result

    def record_sql(self, statement: str, reader: Reader) -> None:
        """Record that `reader` ran `statement` through the SQL door (it may read any session)."""
        self.access.record(AccessEvent.of(reader, SQL, [], {"statement": statement}))

    def record_recording_read(self, session_id: str, what: str, detail: dict[str, Any],
                              reader: Reader) -> bool:
        """Record that `reader` is about to read session `session_id`'s recording (`what`:
        recording, screen or excerpt) or follow its commands (follow), before any of it leaves. False, and nothing recorded,
        when there is no such session (the route answers that itself)."""
        session_id = session_id.lower()
        try:
            if not self.annotations.session_exists(session_id):
                return False
        except QueryError:
            return False
        self.access.record(AccessEvent.of(reader, what, [session_id], detail))
        return True
