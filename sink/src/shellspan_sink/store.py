"""The store: one clickhouse-connect client over either transport (embedded chDB or a server).

chDB allows one engine per process and per data path, and a client's calls are serialized, so
all access from the sink's threads goes through one lock.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import tables
from .schema import MIGRATIONS, SchemaOptions, migrations_table_ddl

# ClickHouse error codes that say the store cannot work now, not that the data is bad: an insert
# failing with one of them is retried (with backoff), never quarantined.
OUTAGE_CODES = frozenset({
    60, 81,  # UNKNOWN_TABLE, UNKNOWN_DATABASE: the schema is not there (yet)
    159, 160, 209, 210, 279, 285, 319, 394, 425,  # timeouts, network, replicas, cancelled, system
    164, 242,  # READONLY, TABLE_IS_READ_ONLY
    173, 241, 243,  # CANNOT_ALLOCATE_MEMORY, MEMORY_LIMIT_EXCEEDED, NOT_ENOUGH_SPACE
    202, 203,  # TOO_MANY_SIMULTANEOUS_QUERIES, NO_FREE_CONNECTION
    74, 75, 76, 236, 999, 1000,  # file descriptors, ABORTED, KEEPER_EXCEPTION, POCO_EXCEPTION
    192, 193, 194, 195, 497, 516,  # users, passwords, ACCESS_DENIED, AUTHENTICATION_FAILED
})
TOO_MANY_PARTS = 252  # also "too many partitions for one insert", which is the data's fault
_CODE = re.compile(r"\bCode: (\d+)\b")


class StoreError(RuntimeError):
    """The store could not be reached or refused an operation.

    `transient`: the store cannot take it now (unreachable, out of space or memory, overloaded),
    so the same operation may succeed later; false when the operation itself is refused (bad
    data, too many partitions for one insert, a type error), which retrying cannot fix.
    """

    def __init__(self, message: str, code: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


def classify(message: str, code: int | None = None,
             connection_error: bool = False) -> tuple[int | None, bool]:
    """(ClickHouse error code or None, transient) for an error of the store."""
    if not code:
        match = _CODE.search(message)
        code = int(match.group(1)) if match else None
    if connection_error or code is None:  # no answer from ClickHouse at all
        return code, True
    if code == TOO_MANY_PARTS:  # merges lagging behind inserts is back-pressure, not poison
        return code, "Merges are processing" in message
    return code, code in OUTAGE_CODES


def state_dir() -> Path:
    """Where the sink keeps its data unless told otherwise (XDG state directory)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "shellspan"


def private_dir(path: Path | str) -> Path:
    """`path` as a directory only its owner can enter (created 0700, or tightened to 0700)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def default_store_dsn() -> str:
    return f"chdb://{state_dir() / 'store'}"


def check_dsn(dsn: str) -> str:
    """`dsn` if the store can open it (chdb://, http://, https://), else ValueError."""
    scheme = urllib.parse.urlsplit(dsn).scheme
    if scheme not in ("chdb", "http", "https"):
        raise ValueError(f"unsupported store DSN scheme {scheme!r} in {redact_dsn(dsn)!r}: "
                         "use chdb:///path, http:// or https://")
    return dsn


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and responses."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def tuple_values(value: Any) -> tuple:
    """A tuple column's value as a plain tuple (the client returns a named tuple as a dict)."""
    return tuple(value.values()) if isinstance(value, dict) else tuple(value)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


class Store:
    """Owns a ClickHouse client. Thread-safe; every call is serialized.

    With `read_only` (settings), the client is one for reading only, beside the writer's: on the
    embedded store its own chDB connection, whose session gets these settings and then
    ``readonly = 1``, so nothing run on it can change them or reach the writer's session; on a
    server a client without a session that sends these settings (and ``readonly = 2``) with every
    query, in the schema's database.
    """

    def __init__(self, dsn: str, options: SchemaOptions | None = None, *,
                 read_only: dict[str, Any] | None = None) -> None:
        self.dsn = check_dsn(dsn)
        self.kind = urllib.parse.urlsplit(dsn).scheme
        self.options = options or SchemaOptions()
        self.read_only = read_only
        self._password = urllib.parse.urlsplit(dsn).password
        self._lock = threading.Lock()
        self._client = None
        self._partitions_per_insert: int | None = None

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def _connect(self):
        if self._client is None:
            import clickhouse_connect  # here, so the query commands start without it

            try:
                if self.read_only is not None:
                    self._client = self._read_only_client(clickhouse_connect)
                elif self.embedded:
                    path = urllib.parse.urlsplit(self.dsn).path
                    private_dir(path)
                    self._client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
                else:
                    self._client = clickhouse_connect.get_client(dsn=self.dsn)
            except Exception as exc:  # driver raises many types; callers need one
                raise StoreError(f"cannot open store {redact_dsn(self.dsn)}: {self._error(exc)}") from exc
        return self._client

    def _read_only_client(self, clickhouse_connect):
        database = self.options.database
        if self.embedded:
            path = urllib.parse.urlsplit(self.dsn).path
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database)
            # A chDB connection's SETs stay in its own session; readonly=1 locks them there.
            for key, value in {**self.read_only, "readonly": 1}.items():
                client.set_client_setting(key, value)
            return client
        return clickhouse_connect.get_client(dsn=self.dsn, database=database,
                                             autogenerate_session_id=False,
                                             settings={**self.read_only, "readonly": 2})

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            try:
                return self._connect().command(sql, parameters=parameters)
            except StoreError:
                raise
            except Exception as exc:
                self._reset_on_transport_error()
                raise self._error(exc) from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> QueryResult:
        with self._lock:
            try:
                result = self._connect().query(sql, parameters=parameters, settings=settings)
            except StoreError:
                raise
            except Exception as exc:
                self._reset_on_transport_error()
                raise self._error(exc) from exc
        return QueryResult(list(result.column_names), list(result.result_rows))

    def insert_rowbinary(self, table: str, column_names: Sequence[str], data: bytes) -> None:
        """Insert rows ClickHouse parses natively; no per-value work in Python.

        ``optimize_on_insert=0`` halves the insert's cost: the Replacing/Aggregating engines then
        collapse rows in background merges instead of per insert. Queries never rely on either
        (they read with FINAL or merge uniqExact states), so results are the same.
        """
        self._raw_insert(table, column_names, data, "RowBinary", {"optimize_on_insert": 0})

    def insert_json_rows(self, table: str, column_names: Sequence[str], data: bytes) -> None:
        """Insert rows given as JSONEachRow lines (values are data, parsed by ClickHouse)."""
        self._raw_insert(table, column_names, data, "JSONEachRow")

    def _raw_insert(self, table: str, column_names: Sequence[str], data: bytes, fmt: str,
                    settings: dict[str, Any] | None = None) -> None:
        qualified = self.options.name(table)
        with self._lock:
            try:
                self._connect().raw_insert(qualified, list(column_names), insert_block=data,
                                           fmt=fmt, settings=settings)
            except StoreError:
                raise
            except Exception as exc:
                self._reset_on_transport_error()
                raise self._error(exc) from exc

    def partitions_per_insert(self) -> int:
        """ClickHouse's ``max_partitions_per_insert_block`` for the sink's inserts (0: no limit)."""
        if self._partitions_per_insert is None:
            rows = self.query("SELECT getSetting('max_partitions_per_insert_block')").rows
            self._partitions_per_insert = int(rows[0][0])
        return self._partitions_per_insert

    def _error(self, exc: Exception) -> StoreError:
        """A StoreError whose message never carries the DSN's password (it reaches logs, /health)."""
        message = str(exc)
        if self._password:
            message = message.replace(self._password, "***")
        from clickhouse_connect.driver.exceptions import OperationalError

        code = getattr(exc, "code", None)
        code, transient = classify(message, code if isinstance(code, int) else None,
                                   isinstance(exc, (OperationalError, OSError)))
        return StoreError(message, code, transient)

    def _reset_on_transport_error(self) -> None:
        # A server client reconnects by being rebuilt; the embedded engine must be kept.
        if not self.embedded:
            self._client = None

    def ping(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            version = self.query("SELECT version()").rows[0][0]
        except StoreError as exc:
            return {"ok": False, "kind": self.kind, "dsn": redact_dsn(self.dsn), "error": str(exc)}
        return {"ok": True, "kind": self.kind, "dsn": redact_dsn(self.dsn), "version": version,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    # --- migrations ---------------------------------------------------------------------------

    def applied_versions(self) -> set[int]:
        for stmt in migrations_table_ddl(self.options):
            self.command(stmt)
        rows = self.query(f"SELECT version FROM {self.options.name(tables.MIGRATIONS)} FINAL").rows
        return {int(r[0]) for r in rows}

    def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded; idempotent. Returns the versions applied."""
        applied = self.applied_versions()
        done: list[int] = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for stmt in migration.statements(self.options):
                self.command(stmt)
            self.command(
                f"INSERT INTO {self.options.name(tables.MIGRATIONS)} (version, name) "
                "VALUES ({v:UInt32}, {n:String})",
                parameters={"v": migration.version, "n": migration.name},
            )
            done.append(migration.version)
        return done

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None
