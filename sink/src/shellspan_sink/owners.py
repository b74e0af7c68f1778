"""Who owns a session: the first verified identity the sink took spans of it from.

A session's spans under another identity, or unverified ones once the owner is verified, are
refused (``Ingest`` answers with partial success, or 403 when nothing of a request is left).
An identity is the token's subject and the thumbprint of the key that verified it
(``enduser.id``, ``shell.auth.key_id``): the same name vouched for by another host's key is
another identity. A session that has no verified owner yet takes anyone's spans, and the first
verified request claims it.

Owners are remembered here (least recently used first out) and otherwise read from the store,
one query per request for the sessions it does not know: the derived ``shell_sessions.owner``
state is the first verified identity stored for each session, so a restarted sink finds the
owners of sessions that began before it. Claim and check are one step under a lock, so two
requests racing for a new session cannot both win. Known limits: spans acknowledged into the WAL
but not yet stored when the sink restarts are not seen until they are stored, and several sinks
writing one ClickHouse each keep their own memory (the shown identity still comes from the
session's own first span, see ``sql/shell_sessions_rows.sql``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from shellspan import semconv

from . import tables
from .store import Store, tuple_values

Owner = tuple[str, str]  # (enduser.id, key thumbprint or "")
_LOOKUP_BATCH = 10_000


def owner_of(identity: dict[str, str] | None) -> Owner | None:
    """The identity a request's stamped attributes name, or None when it is not verified."""
    if not identity or identity.get(semconv.AUTH_VERIFIED) != "true":
        return None
    return identity[semconv.ENDUSER_ID], identity.get(semconv.AUTH_KEY_ID, "")


class SessionOwners:
    def __init__(self, store: Store, capacity: int = 200_000) -> None:
        self.store = store
        self.capacity = capacity
        self._known: OrderedDict[str, Owner | None] = OrderedDict()
        self._lock = threading.Lock()

    def foreign(self, session_ids: Iterable[str], identity: dict[str, str] | None) -> set[str]:
        """The sessions among `session_ids` that belong to another identity than `identity`'s;
        those with no owner yet are claimed by `identity` when it is verified. Raises
        StoreError when the store cannot say who owns a session it was asked about."""
        me = owner_of(identity)
        ids = list(session_ids)
        with self._lock:
            unknown = [s for s in ids if s not in self._known]
            for i in range(0, len(unknown), _LOOKUP_BATCH):
                self._load(unknown[i:i + _LOOKUP_BATCH])
            refused: set[str] = set()
            for session_id in ids:
                owner = self._known[session_id]
                self._known.move_to_end(session_id)
                if owner is None:
                    self._known[session_id] = me
                elif owner != me:
                    refused.add(session_id)
            while len(self._known) > self.capacity:
                self._known.popitem(last=False)
        return refused

    def _load(self, session_ids: list[str]) -> None:
        rows = self.store.query(
            f"SELECT session_id, argMinMerge(owner) FROM {self.store.options.name(tables.SESSIONS)} "
            "WHERE session_id IN {ids:Array(String)} GROUP BY session_id",
            {"ids": session_ids}).rows
        found = {session_id: owner for session_id, owner in
                 ((s, tuple_values(o)) for s, o in rows) if owner[0]}
        for session_id in session_ids:
            self._known[session_id] = found.get(session_id)
