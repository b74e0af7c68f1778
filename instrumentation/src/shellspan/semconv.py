"""Span names and attribute keys shared by the shell side and the sink: the span contract.

OpenTelemetry semantic-convention names are used where one exists; everything shellspan adds
lives under ``shell.``. The sink derives its session and command tables from exactly these keys,
so they are a contract: change one and the stored history stops matching. Every name a span
carries is defined here and nowhere else (``shellspan.spans`` builds the spans from them).
This module imports nothing, so the sink can share it without the shell side's dependencies.
"""

# Span names.
SPAN_SESSION = "shell.session"
SPAN_SESSION_START = "shell.session.start"
SPAN_HEARTBEAT = "shell.session.heartbeat"
SPAN_COMMAND = "shell.command"
SESSION_SPAN_NAMES = (SPAN_SESSION, SPAN_SESSION_START, SPAN_HEARTBEAT, SPAN_COMMAND)

# Session identity and metadata (root, start and heartbeat spans).
SESSION_ID = "shell.session.id"
SHELL_TYPE = "shell.type"
USER_NAME = "user.name"
HOST_NAME = "host.name"
PROCESS_PID = "process.pid"
PROCESS_PARENT_PID = "process.parent_pid"
TTY = "shell.tty"
CLIENT_ADDRESS = "client.address"
COMPONENT_NAME = "shell.component.name"
COMPONENT_VERSION = "shell.component.version"
COMPONENT_ADAPTERS = "shell.component.adapters"
EXIT_REASON = "shell.exit.reason"
EXIT_CODE = "process.exit.code"
COMMAND_COUNT = "shell.command.count"
COMMAND_FAILED_COUNT = "shell.command.failed_count"  # root span: commands that failed
CWD_LAST = "shell.cwd.last"  # root span: the directory the session ended in
SHELL_VERSION = "shell.version"  # bash/zsh: $BASH_VERSION, $ZSH_VERSION
SESSION_ADOPTED = "shell.session.adopted"  # the agent learnt of the session after it started
METADATA_ERROR = "shell.metadata.error"  # an admin shell's metadata provider raised

# Per command (and the session's current directory).
CWD = "shell.cwd"
COMMAND_LINE = "process.command_line"
COMMAND_NAME = "shell.command.name"
COMMAND_SEQ = "shell.command.seq"
COMMAND_REDACTED = "shell.command.redacted"
COMMAND_PIPESTATUS = "shell.command.pipestatus"  # exit status of every pipeline stage (int array)
COMMAND_HIDDEN = "shell.command.hidden"  # typed so that the shell keeps it out of its history
COMMAND_LINE_LENGTH = "shell.command.length"  # UTF-8 bytes of a command line cut to the limit
# The longest command line stored whole (UTF-8 bytes): longer ones are cut with a visible mark
# by the shell side, which sets COMMAND_LINE_LENGTH; the sink keeps attributes at least this long.
COMMAND_LINE_MAX_BYTES = 64 * 1024

# Nested shells (bash, zsh): the level and the session of the shell that started this one.
SHELL_LEVEL = "shell.level"
PARENT_SESSION_ID = "shell.parent.session.id"
PARENT_SPAN_ID = "shell.parent.span_id"  # the parent session's command that started this one

# A command that raised (Python shells): OpenTelemetry's exception attribute.
EXCEPTION_TYPE = "exception.type"

# Terminal recordings: one OTLP log record per chunk of terminal I/O (trace id = session id,
# span id = the command running, or the session's root span between commands).
RECORDING_EVENT = "shell.recording.event"  # asciicast v2 event code: o, i, r, m
RECORDING_SEQ = "shell.recording.seq"  # per-session chunk number from 1; (session, seq) is unique
RECORDING_REDACTED = "shell.recording.redacted"  # only when true
RECORDING_DROPPED_BYTES = "shell.recording.dropped_bytes"  # bytes the recorder's limits dropped
RECORDING_TERM = "shell.recording.term"  # first record: TERM
RECORDING_COMMAND = "shell.recording.command"  # first record: what the recorder ran
# The values of RECORDING_EVENT (asciicast v2 codes).
RECORDING_OUTPUT, RECORDING_INPUT, RECORDING_RESIZE, RECORDING_MARKER = "o", "i", "r", "m"

# Shell-state snapshots: an event on the start span (the state at start), on heartbeats (while
# the session is active, at most every SHELLSPAN_SNAPSHOT_INTERVAL) and on the root span (at end).
EVENT_SNAPSHOT = "shell.snapshot"
SNAPSHOT_KIND = "shell.snapshot.kind"  # start, heartbeat, end
SNAPSHOT_KINDS = ("start", "heartbeat", "end")
# cwd: CWD. The environment's changes since the session started: "NAME=value" entries (values
# of secret-looking names or values redacted) and the names removed; where the values were seen.
ENV_CHANGED = "shell.env.changed"
ENV_REMOVED = "shell.env.removed"
ENV_SOURCE = "shell.env.source"  # process (Python shells), command PID NAME (bash/zsh), unknown
VENV = "shell.venv"  # the active virtualenv ($VIRTUAL_ENV or the Python's own prefix)
CONDA_ENV = "shell.conda.env"
GIT_BRANCH = "shell.git.branch"  # of the cwd's repository; a commit id when detached
GIT_DIRTY = "shell.git.dirty"  # tracked files changed (untracked files do not count)
JOBS = "shell.jobs"  # background and stopped jobs: "PID STATE command" entries
CPU_USER_S = "shell.cpu.user_s"  # CPU seconds of the shell and the commands it waited for
CPU_SYSTEM_S = "shell.cpu.system_s"
MAX_RSS_KB = "shell.memory.max_rss_kb"  # the shell's peak resident size

# Resource attributes of every export request.
SERVICE_NAME = "service.name"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"
TELEMETRY_SDK_LANGUAGE = "telemetry.sdk.language"
TELEMETRY_SDK_VERSION = "telemetry.sdk.version"

# Baggage entry children of a session inherit (W3C BAGGAGE): the session's id.
BAGGAGE_SESSION_ID = SESSION_ID

# Identity established by the sink from a verified token (never trusted from the client).
ENDUSER_ID = "enduser.id"
AUTH_VERIFIED = "shell.auth.verified"
AUTH_HOST = "shell.auth.host"  # the host the token names (its broker vouched for the user)
AUTH_KEY_ID = "shell.auth.key_id"  # RFC 7638 thumbprint of the public key that verified it
# When the sink received the span or log record (Unix nanoseconds, decimal), stamped on each one.
RECEIVED_TIME = "shell.sink.received_time_unix_nano"
# Attributes only the sink writes: a client's own values for them are dropped on ingest.
SINK_OWNED = (ENDUSER_ID, AUTH_VERIFIED, AUTH_HOST, AUTH_KEY_ID, RECEIVED_TIME)

# How a session ended: `exec` means the shell replaced itself with another program.
EXIT_REASONS = ("exit", "eof", "signal", "hangup", "crash", "orphaned", "exec")
