"""The span model, built in one place.

Pure functions from what is known about a session or a command to the ``SpanData`` that goes on
the wire. The Python shells (``shellspan.session``, and through it the admin-shell mixin), the
bash/zsh agent and anything else that records sessions call these, so what each span carries is
decided here, with every name taken from ``shellspan.semconv``. Nothing here reads the clock,
the environment or the process: callers pass the facts in, which keeps the functions cheap on a
shell's own thread and testable in microseconds.

One trace per session (trace id = session id). The root span ``shell.session`` is exported when
the session ends; a short ``shell.session.start`` child goes out at once so the sink knows the
session is live; ``shell.session.heartbeat`` children follow while it lives; every command is a
``shell.command`` child of the root. The state of the shell (``shell.snapshot`` events) rides on
the start span (at start), heartbeats (while active) and the root (at end).
"""

from __future__ import annotations

from shellspan import semconv as sc
from shellspan.otlp import (
    STATUS_ERROR,
    STATUS_UNSET,
    AttrValue,
    Event,
    Link,
    SpanData,
    new_span_id,
)

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ms at start-up
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Mapping

    from shellspan.snapshot import Snapshot


def identity(*, session_id: str, shell_type: str, user: str, host: str, pid: int,
             parent_pid: int, tty: str = "", client_address: str = "",
             cwd: str = "") -> dict[str, AttrValue]:
    """The attributes that say whose session this is and where it runs (start and root span)."""
    return {
        sc.SESSION_ID: session_id,
        sc.SHELL_TYPE: shell_type,
        sc.USER_NAME: user,
        sc.HOST_NAME: host,
        sc.PROCESS_PID: pid,
        sc.PROCESS_PARENT_PID: parent_pid,
        sc.TTY: tty,
        sc.CLIENT_ADDRESS: client_address,
        sc.CWD: cwd,
    }


def parent_link(attributes: dict[str, AttrValue], links: list[Link], parent_trace_id: bytes,
                parent_span_id: bytes, trace_state: str = "") -> None:
    """Record that this session was started from another one's command (a nested shell, a
    Python REPL run from bash): a span link to that command and the parent's ids as attributes,
    so queries can find children without reading links."""
    links.append(Link(parent_trace_id, parent_span_id, trace_state))
    attributes[sc.PARENT_SESSION_ID] = parent_trace_id.hex()
    attributes[sc.PARENT_SPAN_ID] = parent_span_id.hex()


def start_span(trace_id: bytes, root_span_id: bytes, attributes: Mapping[str, AttrValue],
               start_ns: int, end_ns: int, events: list[Event] | None = None) -> SpanData:
    """``shell.session.start``: exported at once, with the session's identity attributes (and
    the snapshot at start, when one was taken)."""
    return SpanData(trace_id, new_span_id(), sc.SPAN_SESSION_START, start_ns,
                    max(end_ns, start_ns), root_span_id, dict(attributes), events=events)


def heartbeat_span(trace_id: bytes, root_span_id: bytes, *, shell_type: str, cwd: str,
                   command_count: int, now_ns: int, events: list[Event] | None = None
                   ) -> SpanData:
    """``shell.session.heartbeat``: the session still lives; where it is and how far it got."""
    return SpanData(trace_id, new_span_id(), sc.SPAN_HEARTBEAT, now_ns, now_ns, root_span_id,
                    {sc.SESSION_ID: trace_id.hex(), sc.SHELL_TYPE: shell_type, sc.CWD: cwd,
                     sc.COMMAND_COUNT: command_count}, events=events)


def snapshot_event(kind: str, time_ns: int, snap: Snapshot) -> Event:
    """A ``shell.snapshot`` event: the state of the shell at ``time_ns`` (``kind``: start,
    heartbeat or end). Facts that were not found are left out rather than sent empty."""
    attrs: dict[str, AttrValue] = {sc.SNAPSHOT_KIND: kind, sc.CWD: snap.cwd}
    facts: tuple[tuple[str, AttrValue | None], ...] = (
        (sc.ENV_CHANGED, [f"{k}={v}" for k, v in sorted(snap.env_changed.items())]),
        (sc.ENV_REMOVED, sorted(snap.env_removed)),
        (sc.ENV_SOURCE, snap.env_source),
        (sc.VENV, snap.venv),
        (sc.CONDA_ENV, snap.conda_env),
        (sc.GIT_BRANCH, snap.git_branch),
        (sc.GIT_DIRTY, snap.git_dirty),
        (sc.JOBS, list(snap.jobs)),
        (sc.CPU_USER_S, snap.cpu_user_s),
        (sc.CPU_SYSTEM_S, snap.cpu_system_s),
        (sc.MAX_RSS_KB, snap.max_rss_kb),
    )
    for key, value in facts:
        if value is not None and value != "" and value != []:
            attrs[key] = value
    # Empty lists say "nothing changed" when the environment was seen at all.
    if snap.env_source:
        attrs.setdefault(sc.ENV_CHANGED, [])
        attrs.setdefault(sc.ENV_REMOVED, [])
    return Event(time_ns, sc.EVENT_SNAPSHOT, attrs)


def command_span(trace_id: bytes, root_span_id: bytes, span_id: bytes, *, seq: int, text: str,
                 name: str, cwd: str, start_ns: int, end_ns: int, exit_code: int | None,
                 redacted: bool, error_type: str = "", message: str = "",
                 extra: Mapping[str, AttrValue] | None = None) -> SpanData:
    """``shell.command``: one command as typed (already redacted) and how it ended.

    ``exit_code`` None means the shell never learnt how the command ended (it was cut short):
    no exit code is invented. The span's status is ERROR when the command failed: a non-zero
    exit code, an exception (``error_type``) or a ``message`` saying why."""
    attrs: dict[str, AttrValue] = {
        sc.SESSION_ID: trace_id.hex(),
        sc.COMMAND_LINE: text,
        sc.COMMAND_NAME: name,
        sc.CWD: cwd,
        sc.COMMAND_SEQ: seq,
        sc.COMMAND_REDACTED: redacted,
    }
    if exit_code is not None:
        attrs[sc.EXIT_CODE] = int(exit_code)
    if error_type:
        attrs[sc.EXCEPTION_TYPE] = error_type
    if extra:
        attrs.update(extra)
    failed = bool(exit_code) or bool(error_type) or bool(message)
    return SpanData(trace_id, span_id, sc.SPAN_COMMAND, start_ns, max(end_ns, start_ns),
                    root_span_id, attrs, status_code=STATUS_ERROR if failed else STATUS_UNSET,
                    status_message=message)


CUT_MARK = "…[cut: {} bytes]"


def cut_command_line(text: str,
                     limit: int = sc.COMMAND_LINE_MAX_BYTES) -> tuple[str, int | None]:
    """A command line longer than ``limit`` UTF-8 bytes, cut at a character boundary with a
    visible mark; returns (text, original length in bytes, or None when it was not cut)."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, None
    kept = raw[:limit].decode("utf-8", "ignore")
    return kept + CUT_MARK.format(len(raw)), len(raw)


def command_failed(exit_code: int | None, error_type: str = "", message: str = "") -> bool:
    """Whether ``command_span`` marks these facts as a failure (for the session's counters)."""
    return bool(exit_code) or bool(error_type) or bool(message)


def session_span(trace_id: bytes, root_span_id: bytes, attributes: Mapping[str, AttrValue], *,
                 start_ns: int, end_ns: int, reason: str, exit_code: int | None,
                 command_count: int, failed_count: int, last_cwd: str,
                 links: Iterable[Link] = (), events: list[Event] | None = None) -> SpanData:
    """``shell.session``, the root: identity, how the session ended and its totals.

    ``exit_code`` None: the session's end was observed from outside (the shell vanished) and
    its exit status is unknown. A ``crash`` is the one ending whose status is ERROR."""
    attrs = dict(attributes)
    attrs.update({sc.EXIT_REASON: reason, sc.COMMAND_COUNT: command_count,
                  sc.COMMAND_FAILED_COUNT: failed_count, sc.CWD_LAST: last_cwd})
    if exit_code is not None:
        attrs[sc.EXIT_CODE] = int(exit_code)
    crashed = reason == "crash"
    return SpanData(trace_id, root_span_id, sc.SPAN_SESSION, start_ns, max(end_ns, start_ns),
                    b"", attrs, status_code=STATUS_ERROR if crashed else STATUS_UNSET,
                    status_message=reason if crashed else "", links=list(links), events=events)
