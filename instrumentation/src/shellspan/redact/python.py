"""Secrets in Python source, read from its syntax tree.

A literal is redacted where a secret-looking name receives it: assignments (``pw = "x"``,
``self.api_key = "x"``, ``user, pw = "u", "x"``, ``os.environ["TOKEN"] = "x"``), keyword
arguments (``password="x"``), dictionary entries, defaults, comparisons, the password of a
credential pair or call (``auth=("u", "x")``, ``.login("u", "x")``, ``HTTPBasicAuth("u", "x")``),
and the value set for a secret-looking name (``os.putenv("X_TOKEN", "x")``,
``os.environ.setdefault("API_KEY", "x")``, ``setattr(o, "password", "x")``). Expressions are kept:
``password = getpass()`` or ``token=os.environ["TOKEN"]`` hold no secret. String literals are also
read as command lines (``subprocess.run(["curl", "-u", "admin:pw", url])``,
``os.system("sshpass -p pw ...")``) and for ``name=value`` pairs (``"host=db password=x"``).
"""

from __future__ import annotations

import ast
import re
import warnings

from shellspan.redact.code import code_spans
from shellspan.redact.commands import argv_spans
from shellspan.redact.names import AUTH_SCHEMES, is_secret_name, is_secret_value
from shellspan.redact.shell import KNOWN_COMMANDS, shell_spans
from shellspan.redact.words import Span, Word, pair_spans

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_REST = re.compile(r"[^\r\n]*")
_STRING_PREFIX = re.compile(r"[rRbBuU]*")

# Calls that take a password positionally: name -> index of that argument (-1: the last).
CREDENTIAL_CALLS = {
    "login": 1, "authenticate": 1, "HTTPBasicAuth": 1, "HTTPDigestAuth": 1, "HTTPProxyAuth": 1,
    "BasicAuth": 1, "DigestAuth": 1, "simple_bind_s": 1, "simple_bind": 1, "bind_s": 1,
    "add_password": 3, "FTP": 2, "FTP_TLS": 2, "set_password": -1, "pass_": 0,
}
# Calls that set a named value: the argument after a secret-looking name is its value.
SETTER_CALLS = frozenset({"putenv", "setdefault", "setattr", "set", "setenv", "__setitem__",
                          "hset", "setItem"})
# Names whose value may be a (user, password) pair: only the password is redacted.
_PAIR_NAMES = re.compile(r"(?i)(?:^|[_\-.])(?:auth|credentials?|creds)$")

# Node types a shell line can also parse as: ``mysql -uroot -ppw < dump.sql`` (names, unary
# minus, comparison), ``TOKEN=abc``, ``host:port`` lines of a here-document (annotations).
_SHELL_LIKE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Name, ast.Attribute,
               ast.Subscript, ast.Slice, ast.Tuple, ast.BinOp, ast.UnaryOp, ast.Compare,
               ast.expr_context, ast.operator, ast.unaryop, ast.cmpop)


def parse(text: str) -> ast.Module | None:
    """The syntax tree of ``text``, or None when it is not Python. Silent: the warnings the
    compiler gives about the user's code (``"\\d"``) are the interpreter's to give, not ours."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def _shell_like(nodes: list[ast.AST]) -> bool:
    """Whether a statement (its nodes) could as well be a shell command line: it has no call,
    string, display, definition or keyword of Python's own."""
    for node in nodes:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes)):
                return False
        elif not isinstance(node, _SHELL_LIKE):
            return False
    return True


def _is_secret_literal(value: object) -> bool:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return is_secret_value(value) and value.strip().lower() not in AUTH_SCHEMES
    return isinstance(value, (int, float, complex)) and not isinstance(value, bool)


def _name_of(node: ast.AST) -> str | None:
    """The name a target or callee stands for: ``pw``, ``self.api_key``, ``env["TOKEN"]``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
            and isinstance(node.slice.value, str):
        return node.slice.value
    return None


class _Finder:
    def __init__(self, text: str, depth: int) -> None:
        self.text = text
        self.depth = depth
        self.spans: list[Span] = []
        self._line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
        self._ascii = text.isascii()

    def index(self, line: int, col: int) -> int:
        start = self._line_starts[line - 1]
        if self._ascii:
            return start + col
        return start + len(self.text[start:start + col].encode()[:col].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> Span:
        return (self.index(node.lineno, node.col_offset),
                self.index(node.end_lineno, node.end_col_offset))

    # -- values in a secret position

    def secret(self, node: ast.AST | None) -> None:
        """Redact the literals of an expression that a secret-looking name receives: strings,
        numbers, f-strings with text of their own, through operators, conditionals and
        collections (``"sk-" + suffix``, ``x or "default"``), not through calls or names."""
        stack = [node]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Constant):
                if _is_secret_literal(node.value):
                    self.spans.append(self.span(node))
            elif isinstance(node, ast.JoinedStr):
                fixed = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if _is_secret_literal(fixed):
                    self.spans.append(self.span(node))
            elif isinstance(node, ast.BinOp):
                stack += (node.left, node.right)
            elif isinstance(node, ast.BoolOp):
                stack += node.values
            elif isinstance(node, ast.IfExp):
                stack += (node.body, node.orelse)
            elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                stack += node.elts

    def named(self, name: str | None, value: ast.AST | None) -> None:
        if not name or value is None or not is_secret_name(name):
            return
        if _PAIR_NAMES.search(name) and isinstance(value, (ast.Tuple, ast.List)) \
                and len(value.elts) == 2:
            self.secret(value.elts[1])  # (user, password): the user stays readable
        else:
            self.secret(value)

    def bind(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                self.bind(t, v)
        else:
            self.named(_name_of(target), value)

    # -- node handlers

    def assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.bind(target, node.value)

    def call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            self.named(kw.arg, kw.value)
        name = _name_of(node.func)
        args = node.args
        index = CREDENTIAL_CALLS.get(name or "")
        if index is not None and len(args) > max(index, 0):
            self.secret(args[index])
        if name in SETTER_CALLS:
            for a, v in zip(args, args[1:]):
                if isinstance(a, ast.Constant) and isinstance(a.value, str) \
                        and is_secret_name(a.value):
                    self.secret(v)
        if args and isinstance(args[0], (ast.List, ast.Tuple)) and args[0].elts:
            self.argv(args[0].elts)

    def argv(self, elts: list[ast.expr]) -> None:
        """``["curl", "-u", "admin:pw", url]``: an argument list read like a command line."""
        first = elts[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            return
        words = []
        for e in elts[1:]:
            if isinstance(e, ast.Constant) and isinstance(e.value, str):
                words.append(self.word(e))
            else:  # an expression: a reference, never redacted, but it counts as an argument
                s, t = self.span(e)
                words.append(Word("$(expr)", self.text[s:t], s))
        self.spans.extend(argv_spans(first.value.rpartition("/")[2], words).spans)

    def word(self, node: ast.Constant) -> Word:
        """A string literal as a word; positions per character when it is written plainly."""
        s, e = self.span(node)
        raw = self.text[s:e]
        value = node.value
        prefix = _STRING_PREFIX.match(raw).end()
        q = 3 if raw[prefix:prefix + 3] in ('"""', "'''") else 1
        if raw[prefix + q:len(raw) - q] == value and len(raw) - q >= prefix + q:
            return Word(value, raw, s, at=s + prefix + q)
        return Word(value, raw, s)

    def string(self, node: ast.Constant) -> None:
        """A string literal: ``name=value`` pairs in it, or a command line."""
        value = node.value
        if not any(c in value for c in "=:") and " " not in value:
            return
        w = self.word(node)
        self.spans.extend(pair_spans(w))
        first = value.split(None, 1)[0] if value.strip() else ""
        if " " in value and first.rpartition("/")[2] in KNOWN_COMMANDS:
            self.spans.extend(w.typed(a, b) or (w.start, w.end)
                              for a, b in code_spans(value, self.depth + 1) if b > a)

    def comments(self, literals: list[ast.AST]) -> None:
        """Comments (``# curl -u admin:pw``, ``# password=x``) are read as code of their own."""
        inside = [self.span(n) for n in literals]
        text = self.text
        at = text.find("#")
        while at >= 0:
            if any(a <= at < b for a, b in inside):
                at = text.find("#", at + 1)
                continue
            m = _LINE_REST.match(text, at + 1)
            body, start = m.group(), m.start()
            self.spans.extend((start + a, start + b) for a, b in code_spans(body, self.depth + 1))
            at = text.find("#", m.end())

    def visit(self, nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.Assign):
                self.assign(node)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                self.bind(node.target, node.value)
            elif isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and isinstance(k.value, str):
                        self.named(k.value, v)
            elif isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                for a, b in zip(sides, sides[1:]):
                    self.named(_name_of(a), b)
                    self.named(_name_of(b), a)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                a = node.args
                positional = a.posonlyargs + a.args
                for arg, default in zip(positional[len(positional) - len(a.defaults):],
                                        a.defaults):
                    self.named(arg.arg, default)
                for arg, default in zip(a.kwonlyargs, a.kw_defaults):
                    self.named(arg.arg, default)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.string(node)


def python_spans(text: str, tree: ast.Module, depth: int = 0) -> list[Span] | None:
    """Spans of ``text`` (parsed as ``tree``) that hold secrets; None when every statement could
    as well be a shell line, and the text is then better read as one. Statements that could be
    shell lines amid Python ones are read as shell lines each."""
    statements = [list(ast.walk(stmt)) for stmt in tree.body]
    shell_like = [_shell_like(nodes) for nodes in statements]
    if all(shell_like):
        return None
    finder = _Finder(text, depth)
    for nodes, is_shell in zip(statements, shell_like):
        if is_shell:
            a, b = finder.span(nodes[0])
            finder.spans.extend((a + s, a + e) for s, e in shell_spans(text[a:b], depth))
        else:
            finder.visit(nodes)
    if "#" in text:
        finder.comments([n for nodes in statements for n in nodes
                         if isinstance(n, (ast.Constant, ast.JoinedStr))])
    return finder.spans
