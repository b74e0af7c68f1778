"""Secrets in shell command lines: words, simple commands and pipelines, then the rules.

The line is split the way the shell splits it (quotes, escapes, ``$(...)``, operators, here-strings
and here-documents), keeping where every character of every word came from, so only the secret
is replaced. ``shlex`` splits the same way but loses those positions, hence this small scanner.
With unbalanced quotes the line is also read a second time split on blanks alone, so a stray quote
cannot hide what follows it.
"""

from __future__ import annotations

import re

from shellspan.redact.code import MAX_DEPTH, code_spans
from shellspan.redact.commands import BY_NAME, USER_COLON, Analysis, argv_spans, value_span
from shellspan.redact.names import is_secret_name, is_secret_value
from shellspan.redact.words import Span, Word, pair_spans

_CHUNK = re.compile(r"""
    (?P<plain>[^\s'"\\`$|&;()<>]+)
  | (?P<sq>'[^']*(?P<sqc>'?))
  | (?P<dq>"(?:[^"\\]|\\[\s\S])*(?P<dqc>"?))
  | (?P<ansi>\$'(?:[^'\\]|\\[\s\S])*(?P<ansic>'?))
  | (?P<bq>`(?:[^`\\]|\\[\s\S])*(?P<bqc>`?))
  | (?P<esc>\\[\s\S]?)
  | (?P<dollar>\$)
""", re.X)
_DQ_ESCAPABLE = '$`"\\\n'
_ASSIGN = re.compile(r"[A-Za-z_]\w*(?:\[[^\]]*\])?\+?=")

# Words that start a command but are not its name.
_RESERVED = frozenset({"!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while",
                       "until", "case", "esac", "for", "select", "function", "coproc"})
# Commands that run another command: (options that take a value, positional words before it).
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    name: (frozenset(opts.split()), skip) for name, opts, skip in (
        ("sudo", "-u -g -h -p -C -r -t -T -U -D -R --user --group --host --prompt --role --type "
                 "--close-from --command-timeout --other-user --chdir --chroot", 0),
        ("doas", "-u -C", 0),
        ("env", "-u -C -S --unset --chdir --split-string", 0),
        ("nohup", "", 0), ("exec", "-a", 0), ("command", "", 0), ("builtin", "", 0),
        ("eval", "", 0), ("time", "-f -o --format --output", 0), ("nice", "-n --adjustment", 0),
        ("ionice", "-c -n -p -P -u --class --classdata", 0),
        ("timeout", "-s -k --signal --kill-after", 1), ("stdbuf", "-i -o -e", 0),
        ("xargs", "-I -n -P -d -E -L -s -a --max-args --max-procs --delimiter --arg-file", 0),
        ("watch", "-n -d --interval", 0), ("flock", "-w -E --timeout", 1),
        ("chronic", "", 0), ("unbuffer", "", 0), ("torsocks", "", 0),
        ("proxychains", "-f", 0), ("proxychains4", "-f", 0),
        ("runuser", "-u -g -G --user --group", 0), ("strace", "-o -e -p -s", 0),
        ("ssh", "-p -i -l -o -F -J -L -R -D -b -c -E -e -I -m -O -Q -S -W -w -B", 1),
    )
}
# Builtins whose arguments are assignments (export TOKEN=...).
_ASSIGNING = frozenset({"export", "declare", "typeset", "local", "readonly", "env"})
# Commands that write their arguments to stdout, for a reader at the other end of a pipe.
_EMITTERS = frozenset({"echo", "printf", "print", "yes", "cat"})
# A quoted argument starting with one of these is itself a command line (bash -c "...").
KNOWN_COMMANDS = frozenset(BY_NAME) | frozenset(_WRAPPERS) | _EMITTERS | _ASSIGNING | {
    "sh", "bash", "zsh", "dash", "ksh", "fish", "su"}


class Command:
    """One simple command: its words, here-strings, here-document bodies, the command whose
    output it reads through a pipe, the comment that follows it."""

    __slots__ = ("words", "herestrings", "heredocs", "piped_from", "comment")

    def __init__(self, piped_from: Command | None = None) -> None:
        self.words: list[Word] = []
        self.herestrings: list[Word] = []
        self.heredocs: list[Span] = []
        self.piped_from = piped_from
        self.comment: Word | None = None


def _closing(text: str, i: int, open_: str, close: str) -> int:
    """End (exclusive) of the balanced ``open_``...``close`` group at ``text[i]``."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                return n
            i = j + 1
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


_ENDS_WORD = r"(?=[\s|&;()<>]|\Z)"
_OPERATOR = r"\d*(?:<<<|<<-|<<|>>|>&|<&|<>|>\||&>>|&>|[<>])|&&|\|\||\|&|;;&?|;&|[|&;()\n]"
# One token at a time: blanks, an operator, a comment, and the common words (plain, or one
# single-quoted string); anything else is a word for ``_word``.
_TOKEN = re.compile(rf"""(?P<gap>(?:[^\S\n]|\\\n)+)|(?P<op>{_OPERATOR})|(?P<comment>\#[^\n]*)
    |(?P<plain>[^\s'"\\`$|&;()<>]+){_ENDS_WORD}|(?P<single>'(?P<inner>[^']*)'){_ENDS_WORD}""",
                    re.X)
# The same, for the reading that takes quotes for ordinary characters.
_BLANK_TOKEN = re.compile(
    rf"(?P<gap>(?:[^\S\n]|\\\n)+)|(?P<op>{_OPERATOR})|(?P<plain>[^\s|&;()<>]+)")


def _word(text: str, i: int) -> tuple[Word, int, bool]:
    """The word starting at ``text[i]``, with quotes, escapes and substitutions: (word, end,
    whether a quote was left open)."""
    value: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    open_quote = False
    j = i
    n = len(text)
    while j < n:
        m = _CHUNK.match(text, j)
        if m is None:
            break
        kind, s, e = m.lastgroup, m.start(), m.end()
        if kind == "plain":
            value.append(m.group())
            starts.extend(range(s, e))
            ends.extend(range(s + 1, e + 1))
        elif kind == "sq":
            closed = bool(m.group("sqc"))
            open_quote |= not closed
            inner_end = e - 1 if closed else e
            value.append(text[s + 1:inner_end])
            starts.extend(range(s + 1, inner_end))
            ends.extend(range(s + 2, inner_end + 1))
        elif kind in ("dq", "ansi"):
            q = s + (2 if kind == "ansi" else 1)
            closed = bool(m.group(kind + "c"))
            open_quote |= not closed
            inner_end = e - 1 if closed else e
            k = q
            while k < inner_end:
                c = text[k]
                if c == "\\" and k + 1 < inner_end and (kind == "ansi" or
                                                        text[k + 1] in _DQ_ESCAPABLE):
                    if text[k + 1] != "\n":
                        value.append(text[k + 1])
                        starts.append(k)
                        ends.append(k + 2)
                    k += 2
                    continue
                value.append(c)
                starts.append(k)
                ends.append(k + 1)
                k += 1
        elif kind == "esc":
            if e - s == 2 and text[s + 1] != "\n":
                value.append(text[s + 1])
                starts.append(s)
                ends.append(e)
        else:  # `...` or $ (with $(...) and ${...} kept whole: references, not secrets)
            open_quote |= kind == "bq" and not m.group("bqc")
            if kind == "dollar" and e < n and text[e] in "({":
                e = _closing(text, e, text[e], ")" if text[e] == "(" else "}")
                open_quote |= text[e - 1] not in ")}"
            value.append(text[s:e])
            starts.extend(range(s, e))
            ends.extend(range(s + 1, e + 1))
        j = e
    return Word("".join(value), text[i:j], i, starts=starts, ends=ends), j, open_quote


def parse(text: str, quotes: bool = True) -> tuple[list[Command], bool]:
    """The simple commands of ``text`` and whether a quote was left open."""
    commands: list[Command] = []
    cmd = Command()
    redirect = ""
    heredocs: list[tuple[str, bool, Command]] = []
    unbalanced = False
    i, n = 0, len(text)

    def finish(pipe: bool) -> Command:
        if cmd.words or cmd.herestrings or cmd.heredocs or cmd.comment:
            commands.append(cmd)
            return Command(cmd if pipe else None)
        return Command()

    token = _TOKEN if quotes else _BLANK_TOKEN
    while i < n:
        m = token.match(text, i)
        kind = m.lastgroup if m else None
        if kind == "gap":
            i = m.end()
            continue
        if kind == "comment":
            cmd.comment = Word(m.group()[1:], m.group()[1:], i + 1, at=i + 1)
            i = m.end()
            continue
        if kind == "op":
            op = m.group().lstrip("0123456789")
            i = m.end()
            if op[0] in "<>&" and op not in ("&&", "&"):
                redirect = op
                continue
            redirect = ""
            if op in ("|", "|&"):
                cmd = finish(True)
            else:
                cmd = finish(False)
                if op == "\n" and heredocs:
                    i = _heredoc_bodies(text, i, heredocs)
                    heredocs = []
            continue
        if kind == "plain":
            word, end, open_quote = Word(m.group(), m.group(), i, at=i), m.end(), False
        elif kind == "single":
            word, end, open_quote = Word(m.group("inner"), m.group(), i, at=i + 1), m.end(), False
        else:
            word, end, open_quote = _word(text, i)
        i = max(end, i + 1)
        unbalanced |= open_quote
        if redirect == "<<<":
            cmd.herestrings.append(word)
        elif redirect in ("<<", "<<-"):
            heredocs.append((word.value, redirect == "<<-", cmd))
        elif not redirect:
            cmd.words.append(word)
        redirect = ""
    finish(False)
    if heredocs:
        _heredoc_bodies(text, n, heredocs)
    return commands, unbalanced


def _heredoc_bodies(text: str, i: int, pending: list[tuple[str, bool, Command]]) -> int:
    """Attach the bodies of pending here-documents starting at ``text[i]``; returns their end."""
    n = len(text)
    for delimiter, strip_tabs, owner in pending:
        start = i
        while i < n:
            eol = text.find("\n", i)
            line_end = n if eol < 0 else eol
            line = text[i:line_end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                owner.heredocs.append((start, i))
                i = n if eol < 0 else eol + 1
                break
            i = n if eol < 0 else eol + 1
        else:
            owner.heredocs.append((start, n))
    return i


def _base(value: str) -> str:
    return value.rpartition("/")[2].lstrip("!")  # !cmd: an IPython shell escape


def _unwrap(words: list[Word]) -> tuple[int, set[int], bool]:
    """Index of the command name after assignments, reserved words and wrappers (sudo, env,
    timeout...); the indexes of assignment words; whether ``sudo -S`` reads a password."""
    assignments: set[int] = set()
    sudo_stdin = False
    i, n = 0, len(words)
    while i < n:
        v = words[i].value
        if _ASSIGN.match(v):
            assignments.add(i)
            i += 1
            continue
        if v in _RESERVED:
            i += 1
            continue
        name = _base(v)
        wrapper = _WRAPPERS.get(name)
        if wrapper is None:
            break
        takes_value, skip = wrapper
        i += 1
        while i < n:
            v = words[i].value
            if name == "env" and _ASSIGN.match(v):
                assignments.add(i)
            elif v == "--":
                i += 1
                break
            elif len(v) > 1 and v[0] == "-":
                if v in takes_value:
                    i += 1  # its value is the next word
                elif v == "--stdin" and name == "sudo":
                    sudo_stdin = True
                elif v[1] != "-":
                    for j in range(1, len(v)):
                        if v[j] == "S" and name == "sudo":
                            sudo_stdin = True
                        if "-" + v[j] in takes_value:
                            if j + 1 == len(v):
                                i += 1  # its value is the next word
                            break
            else:
                break
            i += 1
        i += skip
    return i, assignments, sudo_stdin


_ECHO_OPTIONS = re.compile(r"-[neErR]+")


def _emitted(cmd: Command) -> tuple[list[Word], list[Span]]:
    """What ``echo``/``printf``/``cat <<<``/``cat <<EOF`` at the start of a pipe writes: its
    words and here-document bodies."""
    i, _, _ = _unwrap(cmd.words)
    name = _base(cmd.words[i].value) if i < len(cmd.words) else ""
    if name not in _EMITTERS:
        return [], []
    args = cmd.words[i + 1:]
    if name == "cat":
        return (cmd.herestrings, cmd.heredocs) if not args else ([], [])
    if name == "printf":
        if args and args[0].value == "-v":
            args = args[2:]
        return (args[1:] if len(args) > 1 and "%" in args[0].value else args), []
    k = 0
    while k < len(args) and _ECHO_OPTIONS.fullmatch(args[k].value):
        k += 1
    return args[k:], []


def _stdin_spans(text: str, cmd: Command, kind: str, out: Analysis) -> None:
    """A reader of secrets on stdin: what is piped in, here-strings, here-document bodies."""
    words, docs = list(cmd.herestrings), list(cmd.heredocs)
    if cmd.piped_from is not None:
        emitted, emitted_docs = _emitted(cmd.piped_from)
        docs.extend(emitted_docs)
        if len(emitted) > 1 and any(is_secret_value(w.value) for w in emitted):
            out.add((emitted[0].start, emitted[-1].end))
        else:
            words.extend(emitted)
    for w in words:
        out.add(value_span(w, kind))
    for start, end in docs:
        body = text[start:end].rstrip("\n")
        if kind != USER_COLON:
            if is_secret_value(body):
                out.add((start, start + len(body)))
            continue
        pos = start
        for line in body.split("\n"):
            user, colon, secret = line.partition(":")
            if colon and is_secret_value(secret):
                out.add((pos + len(user) + 1, pos + len(line)))
            pos += len(line) + 1


def _quoted_prefix(w: Word) -> Span | None:
    """The leading quoted string of a word (``"x"`` of ``"x"},``), if it holds a secret."""
    end = w.raw.find(w.raw[0], 1)
    end = len(w.raw) if end < 0 else end + 1
    return (w.start, w.start + end) if is_secret_value(w.raw[1:end - 1]) else None


_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")
_KEY_COLON = re.compile(r"[{(\[,]*([\"']?)([\w.\-]+)\1:")


def _loose_assignments(words: list[Word], out: Analysis) -> None:
    """``name = "x"`` and ``"name": "x"`` split over words (code that is not valid Python)."""
    for k in range(len(words) - 1):
        w, nxt = words[k], words[k + 1]
        if nxt.raw in ("=", ":=") and k + 2 < len(words) and words[k + 2].raw[:1] in "'\"" \
                and _IDENTIFIER.fullmatch(w.raw) and is_secret_name(w.raw):
            out.add(_quoted_prefix(words[k + 2]))
        elif nxt.raw[:1] in "'\"":
            m = _KEY_COLON.fullmatch(w.raw)
            if m and is_secret_name(m.group(2)):
                out.add(_quoted_prefix(nxt))


def _nested(w: Word, depth: int) -> list[Span]:
    """Secrets of code held in one word (``bash -c "..."``, ``python3 -c "..."``), in text
    positions."""
    return [w.typed(s, e) or (w.start, w.end) for s, e in code_spans(w.value, depth + 1)
            if e > s]


def _command_spans(text: str, cmd: Command, depth: int, out: Analysis) -> None:
    words = cmd.words
    i, assignments, sudo_stdin = _unwrap(words)
    name = _base(words[i].value) if i < len(words) else ""
    if name in _ASSIGNING:
        assignments.update(k for k in range(i + 1, len(words)) if _ASSIGN.match(words[k].value))
    for k, w in enumerate(words):
        out.spans.extend(pair_spans(w, k in assignments))
    args = words[i + 1:]
    found = argv_spans(name, args) if name else Analysis()
    out.spans.extend(found.spans)
    kind = found.stdin_kind or ("secret" if sudo_stdin else None)
    if kind:
        _stdin_spans(text, cmd, kind, out)
    for w in cmd.herestrings:
        out.spans.extend(pair_spans(w))
    if not kind:
        for start, end in cmd.heredocs:
            _document_spans(text, start, end, depth, out)
    if cmd.comment is not None:  # read as code of its own: # curl -u admin:pw ...
        c = cmd.comment
        out.spans.extend((c.start + a, c.start + b) for a, b in code_spans(c.value, depth + 1))
    _loose_assignments(words, out)
    if depth < MAX_DEPTH:
        for k, w in enumerate(words):
            v = w.value
            if " " not in v and "\t" not in v and "\n" not in v:
                continue
            first = v.split(None, 1)[0] if v.strip() else ""
            if _base(first) in KNOWN_COMMANDS or _ASSIGN.match(first) or (
                    k > 0 and words[k - 1].value == "-c"):
                out.spans.extend(_nested(w, depth))


def _document_spans(text: str, start: int, end: int, depth: int, out: Analysis) -> None:
    """A here-document written to a file or fed to a program: a configuration (``KEY=value``,
    ``key: value`` lines) or code (a script for ``bash``, ``python3``)."""
    pos = start
    for line in text[start:end].split("\n"):
        out.spans.extend(pair_spans(Word(line, line, pos, at=pos)))
        pos += len(line) + 1
    out.spans.extend((start + a, start + b) for a, b in code_spans(text[start:end], depth + 1))


_SUBSTITUTION = re.compile(r"\$\(|`")


def shell_spans(text: str, depth: int = 0) -> list[Span]:
    """Spans of ``text`` (a shell command line) that hold secrets."""
    out = Analysis()
    commands, unbalanced = parse(text)
    for cmd in commands:
        _command_spans(text, cmd, depth, out)
    if unbalanced:
        for cmd in parse(text, quotes=False)[0]:
            _command_spans(text, cmd, depth, out)
    if depth < MAX_DEPTH:
        pos = 0
        while True:
            m = _SUBSTITUTION.search(text, pos)
            if m is None:
                break
            if m.group() == "`":
                end = text.find("`", m.end())
                end = len(text) if end < 0 else end
                inner_start, pos = m.end(), end + 1
            else:
                close = _closing(text, m.end() - 1, "(", ")")
                end = close - 1 if text[close - 1:close] == ")" and close > m.end() else close
                inner_start, pos = m.end(), close
            for s, e in shell_spans(text[inner_start:end], depth + 1):
                out.spans.append((inner_start + s, inner_start + e))
    return out.spans
