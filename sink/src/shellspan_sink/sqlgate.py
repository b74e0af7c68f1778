"""The analysts' SQL door (``POST /api/sql``, ``shellspan-sink sql``): one read-only statement
over the shellspan database, bounded in time, result size and memory.

Three walls, each with its own job:

1. **ClickHouse parses the statement, and the parse tree is checked.** ``formatQuery`` parses the
   text as exactly one statement and gives its canonical form (comments gone, one statement or
   an error); ``EXPLAIN AST`` of that canonical form gives the tree, which is walked node by node:
   a SELECT (``WITH`` included), an ``EXPLAIN`` of one, or ``DESCRIBE`` of a table; tables of the
   shellspan database only; table functions from a short list of generators (``numbers``...);
   no function that reads files, other tables by name or server configuration; no
   ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS``. The canonical form is what runs, so what was
   checked is what runs. Nothing is matched in the statement's text.
2. **A client of its own that cannot change its settings.** On the embedded store the door has its
   own chDB connection (its own session: a ``SET`` there never reaches the writer's), whose
   limits are set once and then locked with ``readonly = 1``, which also refuses every table
   function that reaches outside. On a server the door's client sends the limits with every
   query and keeps no session; the server's grants for the read user are the wall there
   (docs/security.md lists them).
3. **Limits enforced by ClickHouse**: ``max_execution_time``, ``max_result_rows``,
   ``max_result_bytes`` (``result_overflow_mode = 'throw'``) and ``max_memory_usage``.

The EXPLAIN AST dump prints identifiers and aliases unescaped, so a crafted name can add lines to
it. The walk is built so that added lines can only make it refuse: children counts must match,
which keeps the root's children real; the rules that depend on a node's parent look only at the
root's children and grandchildren; every other rule looks at a node's own line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .queries import QueryError
from .schema import SchemaOptions
from .store import Store, StoreError

# Table functions that only generate rows (they read nothing outside the statement).
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "primes",
    "values", "null", "format"})
# Functions that read files, tables named in a string, dictionaries or server configuration.
# Their aliases and every dictionary function are added from the engine's own list.
DENIED_FUNCTIONS = frozenset({
    "file", "joinget", "joingetornull", "hascolumnintable", "catboostevaluate",
    "getserversetting", "getmergetreesetting", "fuzzquery"})
EXPLAIN_KINDS = frozenset({"EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN QUERY TREE",
                           "EXPLAIN PIPELINE", "EXPLAIN ESTIMATE"})
_LEAVES = frozenset({"Identifier", "TableIdentifier", "Literal", "Asterisk"})
_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*)(?: (.*))?$")
_CHILDREN = re.compile(r" ?\(children (\d+)\)$")
_PLAIN_TABLE = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)$")
_FORMAT = "Native"  # the client appends FORMAT Native to what it runs, the EXPLAIN included


class SqlRefused(QueryError):
    """A statement the door does not run (HTTP 400); the message says what is not allowed."""


@dataclass(frozen=True)
class SqlLimits:
    max_seconds: float = 30.0
    max_rows: int = 10_000
    max_result_bytes: int = 32 * 1024 * 1024
    max_memory_bytes: int = 1024 * 1024 * 1024

    def settings(self) -> dict[str, Any]:
        """The ClickHouse settings every statement runs with (``readonly`` comes last)."""
        return {"max_execution_time": self.max_seconds, "timeout_overflow_mode": "throw",
                "max_result_rows": self.max_rows, "max_result_bytes": self.max_result_bytes,
                "result_overflow_mode": "throw", "max_memory_usage": self.max_memory_bytes}


@dataclass
class Node:
    kind: str
    text: str
    depth: int
    declared: int
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The text before an alias: a function's, identifier's or table's name."""
        return self.text.split(" (alias ", 1)[0]


_UNCHECKABLE = ("the statement could not be checked (a name with a line break or other "
                "unusual characters?): use plain names")


def parse_tree(lines: list[str]) -> Node:
    """The EXPLAIN AST dump as a tree; SqlRefused when it is not one well-formed tree whose
    children counts match."""
    root: Node | None = None
    stack: list[Node] = []
    for line in lines:
        children = _CHILDREN.search(line)
        match = _LINE.match(line[:children.start()] if children else line)
        if not match:
            raise SqlRefused(_UNCHECKABLE)
        depth = len(match.group(1))
        node = Node(match.group(2), match.group(3) or "", depth,
                    int(children.group(1)) if children else 0)
        if depth == 0 and root is None:
            root = node
        elif root is None or depth == 0 or depth > len(stack):
            raise SqlRefused(_UNCHECKABLE)
        else:
            stack[depth - 1].children.append(node)
        del stack[depth:]
        stack.append(node)
    if root is None:
        raise SqlRefused("send one SQL statement")
    for node in _walk(root):
        if len(node.children) != node.declared or (node.kind in _LEAVES and node.children):
            raise SqlRefused(_UNCHECKABLE)
    return root


def _walk(node: Node):
    yield node
    for child in node.children:
        yield from _walk(child)


@dataclass(frozen=True)
class Vocabulary:
    """What the checks need from the engine: names of functions, table functions, databases."""

    database: str
    denied_functions: frozenset[str]  # lowercase
    table_functions: frozenset[str]  # lowercase, the allowed ones excluded
    other_databases: tuple[str, ...]


def check_tree(root: Node, vocabulary: Vocabulary) -> None:
    """Raise SqlRefused naming the first thing the door does not allow."""
    _check_root(root)
    for node in _walk(root):
        _check_node(node, root, vocabulary)


def _check_root(root: Node) -> None:
    if root.kind == "Explain":
        if root.text not in EXPLAIN_KINDS:
            raise SqlRefused(f"{root.text} is not allowed: EXPLAIN, EXPLAIN AST, SYNTAX, "
                             "QUERY TREE, PIPELINE or ESTIMATE of a SELECT only")
        selects = [c for c in root.children if c.kind == "SelectWithUnionQuery"]
        if len(selects) != 1:
            raise SqlRefused("EXPLAIN is allowed of a SELECT only")
        _check_outputs(root, allowed=("SelectWithUnionQuery", "Set"))
        _check_outputs(selects[0], allowed=("ExpressionList",))
    elif root.kind == "SelectWithUnionQuery":
        _check_outputs(root, allowed=("ExpressionList",))
    elif root.kind == "DescribeQuery":
        _check_outputs(root, allowed=("TableExpression",))
    else:
        raise SqlRefused(f"only SELECT (WITH ... SELECT), EXPLAIN of a SELECT and DESCRIBE are "
                         f"allowed, not {root.kind}")


def _check_outputs(node: Node, allowed: tuple[str, ...]) -> None:
    """The children of the root (or of the select an EXPLAIN explains): the query itself, and
    none of the clauses that write a file, choose a format or change settings."""
    for child in node.children:
        if child.kind in allowed:
            continue
        if child.kind == "Literal":
            raise SqlRefused("INTO OUTFILE is not allowed")
        if child.kind == "Identifier":
            if child.text == _FORMAT:
                continue
            raise SqlRefused("FORMAT is not allowed: the answer is JSON (or the CLI's formats)")
        if child.kind == "Set":
            raise SqlRefused("SETTINGS is not allowed: the door's limits are fixed")
        raise SqlRefused(f"{child.kind} is not allowed here")


def _check_node(node: Node, root: Node, vocabulary: Vocabulary) -> None:
    if node.kind == "Set" and not (root.kind == "Explain" and node.depth == 1):
        raise SqlRefused("SETTINGS and SET are not allowed: the door's limits are fixed")
    if node.kind == "QueryParameter":
        raise SqlRefused("query parameters ({name:Type}) are not supported")
    if node.kind == "Function":
        name = node.name.lower()
        if name in vocabulary.denied_functions:
            raise SqlRefused(f"function {node.name} is not allowed: it reads files, tables named "
                             "in a string, dictionaries or server settings")
        if name in vocabulary.table_functions:
            raise SqlRefused(f"table function {node.name} is not allowed: only "
                             f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))} (it would reach "
                             "files, URLs, other servers or programs)")
    if node.kind == "TableIdentifier":
        match = _PLAIN_TABLE.match(node.name)
        if not match:
            raise SqlRefused(f"table {node.name!r}: table names must be plain identifiers "
                             f"(letters, digits, _), optionally as {vocabulary.database}.table")
        if match.group(1) not in (None, vocabulary.database):
            raise SqlRefused(f"only the {vocabulary.database} database may be read, "
                             f"not {match.group(1)}")
    if node.kind in ("Identifier", "TableIdentifier"):
        for database in vocabulary.other_databases:
            if node.text.startswith(database + "."):
                raise SqlRefused(f"only the {vocabulary.database} database may be read, "
                                 f"not {database}")


# What a ClickHouse error code means for the analyst, with the limit it hit.
_LIMIT_ERRORS = {
    159: "the statement ran longer than {max_seconds:g} s (SHELLSPAN_SQL_MAX_SECONDS)",
    396: "the result is larger than {max_rows} rows or {max_result_bytes} bytes "
         "(SHELLSPAN_SQL_MAX_ROWS, SHELLSPAN_SQL_MAX_RESULT_BYTES): add a LIMIT or aggregate",
    241: "the statement needs more than {max_memory_bytes} bytes of memory "
         "(SHELLSPAN_SQL_MAX_MEMORY)",
    164: "the statement tries to change a setting or to write: SETTINGS, SET and writes are "
         "not allowed",
}


class SqlGate:
    """Checks and runs analysts' statements on a client of their own (see the module doc)."""

    def __init__(self, dsn: str, options: SchemaOptions, limits: SqlLimits) -> None:
        self.limits = limits
        self.options = options
        self.store = Store(dsn, options, read_only=limits.settings())
        self._functions: tuple[frozenset[str], frozenset[str]] | None = None

    def close(self) -> None:
        self.store.close()

    def run(self, statement: str) -> dict[str, Any]:
        """{"columns", "rows"} of one checked statement. Raises SqlRefused (not allowed, or a
        limit hit), QueryError (ClickHouse refused it) or StoreError (the store is down)."""
        canonical = self.check(statement)
        try:
            result = self.store.query(canonical)
        except StoreError as exc:
            raise self._explained(exc) from exc
        return {"columns": result.columns, "rows": [list(r) for r in result.rows]}

    def check(self, statement: str) -> str:
        """The canonical form of `statement` once it passed every check."""
        if not statement.strip():
            raise SqlRefused("send one SQL statement")
        try:
            canonical = self.store.query("SELECT formatQuery({q:String})",
                                         {"q": statement}).rows[0][0]
        except StoreError as exc:
            raise self._explained(exc) from exc
        try:
            dump = self.store.query(f"EXPLAIN AST {canonical}").rows
        except StoreError as exc:
            raise self._explained(exc) from exc
        check_tree(parse_tree([row[0] for row in dump]), self.vocabulary())
        return canonical

    def vocabulary(self) -> Vocabulary:
        """The engine's function names (asked once) and its databases (asked every time)."""
        if self._functions is None:
            functions = self.store.query(
                "SELECT name FROM system.functions WHERE lower(name) IN {denied:Array(String)} "
                "OR lower(alias_to) IN {denied:Array(String)} OR name LIKE 'dict%'",
                {"denied": sorted(DENIED_FUNCTIONS)}).rows
            table_functions = self.store.query("SELECT name FROM system.table_functions").rows
            self._functions = (
                frozenset(DENIED_FUNCTIONS | {n.lower() for (n,) in functions}),
                frozenset(n.lower() for (n,) in table_functions if n not in ALLOWED_TABLE_FUNCTIONS))
        databases = self.store.query("SELECT name FROM system.databases").rows
        return Vocabulary(self.options.database, *self._functions,
                          tuple(sorted(n for (n,) in databases if n != self.options.database)))

    def _explained(self, exc: StoreError) -> QueryError:
        if "Multi-statements are not allowed" in str(exc):
            return SqlRefused("exactly one statement is allowed")
        template = _LIMIT_ERRORS.get(exc.code) if exc.code is not None else None
        if template:
            return SqlRefused(template.format(**vars(self.limits)))
        if exc.code is not None:  # ClickHouse refused the statement: the caller's error
            return QueryError(str(exc))
        raise exc
