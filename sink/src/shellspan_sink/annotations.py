"""Annotations: tags and a note (ticket, reason, reviewer) added to a session after the fact.

Append-only: each annotation is a new row with who added it (the verified subject of the token,
or ``anonymous`` with authentication off) and when; none is ever changed. A later annotation may
supersede an earlier one of the same session; the history keeps both, and the session's current
tags are those of the annotations nothing supersedes. Tags are searchable (``tag=`` on the
session list and on command search). Every value is bound as a parameter.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import tables
from .queries import QueryError, iso
from .store import Store

MAX_TAGS = 20
MAX_NOTE = 4000
MAX_FIELD = 256  # ticket, reviewer
MAX_REASON = 1000
_TAG = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
_ANNOTATION_ID = re.compile(r"^[0-9a-f]{32}$")
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
FIELDS = ("tags", "note", "ticket", "reason", "reviewer", "supersedes")
COLUMNS = ("annotation_id", "session_id", "created_at", "author", "author_verified", "tags",
           "note", "ticket", "reason", "reviewer", "supersedes")


def tagged_sessions(db: Callable[[str], str], tag: str) -> tuple[str, dict[str, Any]]:
    """A subquery of the ids of sessions whose current annotations carry `tag`, and its
    parameters (for ``session_id IN (...)``)."""
    table = db(tables.ANNOTATIONS)
    return (f"SELECT session_id FROM {table} WHERE has(tags, {{tag:String}}) AND annotation_id "
            f"NOT IN (SELECT supersedes FROM {table} WHERE supersedes != '')"), {"tag": tag}


def _text(payload: dict[str, Any], name: str, limit: int) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QueryError(f"{name} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise QueryError(f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise QueryError(f"{name} must not contain NUL characters")
    return value


@dataclass(frozen=True)
class NewAnnotation:
    """What a client asks to add, validated."""

    tags: tuple[str, ...] = ()
    note: str = ""
    ticket: str = ""
    reason: str = ""
    reviewer: str = ""
    supersedes: str = ""

    @classmethod
    def from_payload(cls, payload: Any) -> NewAnnotation:
        if not isinstance(payload, dict):
            raise QueryError("send a JSON object: {\"tags\": [...], \"note\": \"...\", ...}")
        unknown = set(payload) - set(FIELDS)
        if unknown:
            raise QueryError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        tags = payload.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise QueryError("tags must be a list of strings")
        if len(tags) > MAX_TAGS:
            raise QueryError(f"at most {MAX_TAGS} tags per annotation")
        for tag in tags:
            if not _TAG.match(tag):
                raise QueryError(f"tag {tag[:70]!r}: 1 to 64 characters, no spaces or control "
                                 "characters")
        supersedes = _text(payload, "supersedes", 32).lower()
        if supersedes and not _ANNOTATION_ID.match(supersedes):
            raise QueryError("supersedes must be an annotation_id (32 hexadecimal characters)")
        new = cls(tags=tuple(dict.fromkeys(tags)), note=_text(payload, "note", MAX_NOTE),
                  ticket=_text(payload, "ticket", MAX_FIELD),
                  reason=_text(payload, "reason", MAX_REASON),
                  reviewer=_text(payload, "reviewer", MAX_FIELD), supersedes=supersedes)
        if not (new.tags or new.note or new.ticket or new.reason or new.reviewer or new.supersedes):
            raise QueryError("an annotation needs a tag, a note, a ticket, a reason or a reviewer")
        return new


@dataclass
class SessionAnnotations:
    """A session's annotations, oldest first, and the tags in force."""

    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tags(self) -> list[str]:
        superseded = {a["supersedes"] for a in self.history if a["supersedes"]}
        current = [a for a in self.history if a["annotation_id"] not in superseded]
        return sorted({t for a in current for t in a["tags"]})

    def as_dict(self) -> dict[str, Any]:
        return {"tags": self.tags, "annotations": self.history}


class Annotations:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.options.name

    def for_session(self, session_id: str) -> SessionAnnotations:
        rows = self.store.query(
            "SELECT annotation_id, toUnixTimestamp64Milli(created_at) AS created_ms, author, "
            "author_verified, tags, note, ticket, reason, reviewer, supersedes "
            f"FROM {self.db(tables.ANNOTATIONS)} FINAL WHERE session_id = {{id:String}} "
            "ORDER BY created_at, annotation_id", {"id": session_id}).dicts()
        superseded_by = {r["supersedes"]: r["annotation_id"] for r in rows if r["supersedes"]}
        history = []
        for r in rows:
            created_ms = r.pop("created_ms")
            r.update(created_at=iso(created_ms * 1_000_000), author_verified=bool(r["author_verified"]),
                     tags=list(r["tags"]), superseded_by=superseded_by.get(r["annotation_id"]))
            history.append(r)
        return SessionAnnotations(history)

    def session_exists(self, session_id: str) -> bool:
        """Whether the store holds session `session_id` (QueryError for a malformed id)."""
        if not _SESSION_ID.match(session_id):
            raise QueryError("a session id is 32 hexadecimal characters")
        return bool(self.store.query(f"SELECT 1 FROM {self.db(tables.SESSIONS)} "
                                     "WHERE session_id = {id:String} LIMIT 1",
                                     {"id": session_id}).rows)

    def add(self, session_id: str, new: NewAnnotation, author: str,
            verified: bool) -> dict[str, Any] | None:
        """Store `new` on the session; the stored annotation, or None if there is no session."""
        session_id = session_id.lower()
        if not self.session_exists(session_id):
            return None
        if new.supersedes and not self.store.query(
                f"SELECT 1 FROM {self.db(tables.ANNOTATIONS)} WHERE session_id = {{id:String}} "
                "AND annotation_id = {a:String} LIMIT 1",
                {"id": session_id, "a": new.supersedes}).rows:
            raise QueryError(f"this session has no annotation {new.supersedes}")
        created_ms = time.time_ns() // 1_000_000
        row = {"annotation_id": uuid.uuid4().hex, "session_id": session_id,
               "created_at": created_ms, "author": author, "author_verified": int(verified),
               "tags": list(new.tags), "note": new.note, "ticket": new.ticket,
               "reason": new.reason, "reviewer": new.reviewer, "supersedes": new.supersedes}
        types = {"created_at": "Int64", "author_verified": "UInt8", "tags": "Array(String)"}
        values = ", ".join(
            f"fromUnixTimestamp64Milli({{{c}:Int64}})" if c == "created_at"
            else f"{{{c}:{types.get(c, 'String')}}}" for c in COLUMNS)
        self.store.command(f"INSERT INTO {self.db(tables.ANNOTATIONS)} ({', '.join(COLUMNS)}) "
                           f"VALUES ({values})", row)
        row.update(created_at=iso(created_ms * 1_000_000), author_verified=verified,
                   superseded_by=None)
        return row
