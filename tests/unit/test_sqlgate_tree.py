"""The SQL door's walk over EXPLAIN AST dumps: lines added by a crafted name (the dump prints
names unescaped) can only make it refuse, never hide a node or move one."""

from __future__ import annotations

import pytest

from shellspan_sink.sqlgate import SqlRefused, Vocabulary, check_tree, parse_tree

VOCABULARY = Vocabulary("shellspan", frozenset({"file"}), frozenset({"url", "remote"}),
                        ("system", "default"))
SELECT_FROM = """SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Identifier {name}
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      {table}
 Identifier Native"""


def walk(dump: str) -> None:
    check_tree(parse_tree(dump.split("\n")), VOCABULARY)


def test_a_plain_select_passes():
    walk(SELECT_FROM.format(name="x", table="TableIdentifier shellspan.otel_traces"))


@pytest.mark.parametrize("table,message", [
    ("TableIdentifier system.processes", "not system"),
    ("TableIdentifier `a.b`.c", "plain identifiers"),
    ("Function url (children 1)\n       ExpressionList", "table function url"),
])
def test_tables_outside_are_refused(table, message):
    with pytest.raises(SqlRefused, match=message):
        walk(SELECT_FROM.format(name="x", table=table))


@pytest.mark.parametrize("name", [
    # a sibling added after the identifier: its parent's count no longer matches
    "x\n    Literal 1",
    # a child "declared" in the name: a leaf with children
    "x (children 1)\n     Literal 1",
    # a second root
    "x\nSelectWithUnionQuery",
    # a line deeper than any parent
    "x\n          Literal 1",
])
def test_lines_added_by_a_name_are_refused(name):
    with pytest.raises(SqlRefused, match="could not be checked"):
        walk(SELECT_FROM.format(name=name, table="TableIdentifier otel_traces"))


def test_a_faked_root_child_cannot_hide_an_outfile():
    dump = SELECT_FROM.format(name="x", table="TableIdentifier otel_traces").replace(
        "SelectWithUnionQuery (children 2)", "SelectWithUnionQuery (children 3)") + "\n Literal '/x'"
    with pytest.raises(SqlRefused, match="INTO OUTFILE"):
        walk(dump)


def test_settings_only_as_explain_options():
    explain = ("Explain EXPLAIN (children 2)\n Set\n SelectWithUnionQuery (children 1)\n"
               "  ExpressionList (children 1)\n   SelectQuery (children 1)\n"
               "    ExpressionList (children 1)\n     Literal UInt64_1")
    walk(explain)
    with pytest.raises(SqlRefused, match="SETTINGS"):
        walk(explain.replace("SelectQuery (children 1)", "SelectQuery (children 2)") + "\n    Set")
