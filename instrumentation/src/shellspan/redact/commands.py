"""Secrets in the arguments of one command, from a table of the tools that take them.

A rule applies to its own command (and subcommand) only, so ``ssh -p 2222``, ``ls -a`` and
``tar -k`` are untouched while ``sshpass -p pw``, ``redis-cli -a pw`` and ``openssl enc -k pw`` are
redacted. The same analysis serves shell command lines and Python argument lists
(``subprocess.run(["curl", "-u", "admin:pw", url])``).
"""

from __future__ import annotations

from shellspan.redact.names import TRIGGER_STEMS, is_secret_name
from shellspan.redact.words import Span, Word

# How an option's value holds the secret.
SECRET = "secret"  # the whole value
USER_COLON = "user:secret"  # after the first ':' (curl -u admin:pw); a user alone is kept, a
# user with an empty password is a token (curl -u sk_test_abc:)
CREDENTIALS = "user:secret or token"  # the same, but a value without ':' is a token (http -a)
USER_PERCENT = "user%secret"  # smbclient -U user%pw
USER_COMMA = "user,secret"  # lftp -u user,pw
USER_SLASH = "user/secret@db"  # sqlplus scott/tiger@orcl
NAME_EQUALS = "name=secret"  # kubectl --from-literal=key=secret
OPENSSL = "openssl"  # pass:secret; env:VAR, file:path, fd:N and stdin name where it is
COOKIE = "cookie"  # curl -b 'name=value' (a secret), curl -b cookies.txt (a file name, kept)
NAMED = "named"  # names a secret kept elsewhere: docker build --secret id=x,src=file (kept)

_SEPARATOR = {USER_PERCENT: "%", USER_COMMA: ",", NAME_EQUALS: "="}


def value_span(word: Word, kind: str, a: int = 0) -> Span | None:
    """The secret part of ``word.value[a:]`` for a value of this kind."""
    v = word.value
    if kind in (USER_COLON, CREDENTIALS):
        i = v.find(":", a)
        if i < 0:
            return word.span(a) if kind == CREDENTIALS else None
        return word.span(i + 1) if i + 1 < len(v) else word.span(a, i)
    sep = _SEPARATOR.get(kind)
    if sep is not None:
        i = v.find(sep, a)
        return word.span(i + 1) if i >= 0 else None
    if kind == USER_SLASH:
        i = v.find("/", a)
        j = v.find("@", i + 1)
        return word.span(i + 1, j if j > i else len(v)) if i >= 0 else None
    if kind == OPENSSL:
        return word.span(a + 5) if v.startswith("pass:", a) else None
    if kind == COOKIE:
        return word.span(a) if "=" in v[a:] else None
    if kind == NAMED:
        return None
    return word.span(a)


class Tool:
    """Where one command (after ``path``, its subcommand words) takes secrets."""

    __slots__ = ("names", "path", "options", "glued", "takes_value", "getopt", "positional",
                 "positional_min", "positional_when", "positional_skips_pairs", "positional_kind",
                 "key_value", "stdin", "stdin_kind")

    def __init__(self, names: str, path: str = "", options: dict[str, str] | None = None,
                 glued: str = "", takes_value: str = "", *, getopt: bool = True,
                 positional: int | None = None, positional_min: int = 1,
                 positional_when: str = "", positional_skips_pairs: bool = False,
                 positional_kind: str = SECRET, key_value: bool = False,
                 stdin: tuple[str, ...] | None = None, stdin_kind: str = SECRET) -> None:
        self.names = tuple(names.split())
        self.path = tuple(path.split())  # subcommand words, in order
        self.options = options or {}  # option -> kind of its value
        self.glued = frozenset(glued.split())  # options whose value is only attached: -ppw
        self.takes_value = frozenset(takes_value.split())  # other options with a value
        self.getopt = getopt  # short options cluster (-sSu user:pw) and take attached values
        self.positional = positional  # which positional argument is a secret (-1: the last)
        self.positional_min = positional_min  # ... when there are at least this many
        self.positional_when = positional_when  # ... and this option is present (htpasswd -b)
        self.positional_skips_pairs = positional_skips_pairs  # not a name=value one (vault)
        self.positional_kind = positional_kind
        self.key_value = key_value  # a secret-looking positional is followed by its value
        self.stdin = stdin  # reads a secret on stdin: always (()), or with one of these words
        self.stdin_kind = stdin_kind


_MYSQL = "mysql mysqldump mysqladmin mysqlimport mysqlshow mysqlcheck mysqlpump mysqlsh mariadb " \
         "mariadb-dump mariadb-admin mariadb-import mariadb-show mariadb-check"
_MONGO = "mongo mongosh mongodump mongorestore mongoexport mongoimport mongostat mongotop " \
         "mongofiles"
_LDAP = "ldapsearch ldapmodify ldapadd ldapdelete ldapwhoami ldapcompare ldapmodrdn ldapexop"
_LDAP_VALUES = "-D -H -h -p -b -s -f -y -Y -U -X -R -o -e -E -l -z -T -P"
_REGISTRY_LOGIN = dict(options={"-p": SECRET, "--password": SECRET},
                       takes_value="-u --username", stdin=("--password-stdin",))

TOOLS: tuple[Tool, ...] = (
    # Credentials as option values.
    Tool("curl", options={
        "-u": USER_COLON, "--user": USER_COLON, "-U": USER_COLON, "--proxy-user": USER_COLON,
        "-E": USER_COLON, "--cert": USER_COLON, "--proxy-cert": USER_COLON, "--pass": SECRET,
        "--proxy-pass": SECRET, "--oauth2-bearer": SECRET, "--tlspassword": SECRET,
        "--proxy-tlspassword": SECRET, "-b": COOKIE, "--cookie": COOKIE},
       takes_value="-o -H -d -X -A -e -c -T -F -w -x -r -m -K -C -D -Y -y -z -t -Q -P"),
    Tool("http https xh xhs", options={"-a": CREDENTIALS, "--auth": CREDENTIALS},
       takes_value="-A --auth-type -o --output --session --verify --cert --cert-key --proxy"),
    Tool("sshpass", options={"-p": SECRET}, takes_value="-f -d -P"),
    Tool(_MYSQL, options={"-p": SECRET, "--password": SECRET}, glued="-p --password",
       takes_value="-u -h -P -D -e -S"),
    Tool(_MONGO, options={"-p": SECRET, "--password": SECRET},
       takes_value="-u -h -d -c -o -q --username --host --port --db --authenticationDatabase"),
    Tool("redis-cli", options={"-a": SECRET, "--pass": SECRET}, takes_value="-h -p -n -u -s -r -i"),
    Tool("docker podman nerdctl buildah oras crane finch", "login", **_REGISTRY_LOGIN),
    Tool("docker podman nerdctl buildah", options={"--secret": NAMED}),
    Tool("helm", "registry login", **_REGISTRY_LOGIN),
    Tool("skopeo", options={"--creds": USER_COLON, "--src-creds": USER_COLON,
                          "--dest-creds": USER_COLON, "-p": SECRET, "--password": SECRET}),
    Tool("az", "login", options={"-p": SECRET, "--password": SECRET}),
    Tool("twine", options={"-p": SECRET, "--password": SECRET}, takes_value="-u -r"),
    Tool("openssl", getopt=False,
       options={"-passin": OPENSSL, "-passout": OPENSSL, "-pass": OPENSSL, "-password": OPENSSL,
                "-k": SECRET, "-K": SECRET}),
    Tool("openssl", "passwd", getopt=False, takes_value="-salt -in", positional=-1,
       stdin=("-stdin",)),
    Tool("zip zipcloak unzip", options={"-P": SECRET, "--password": SECRET},
       takes_value="-b -n -t -d -x"),
    Tool("7z 7za 7zr 7zz rar unrar", options={"-p": SECRET}, glued="-p", getopt=False),
    Tool("smbclient rpcclient smbcacls smbget smbtree",
       options={"-U": USER_PERCENT, "--user": USER_PERCENT, "--password": SECRET},
       takes_value="-W -I -p -n -s -d -c -D -m"),
    Tool("lftp", options={"-u": USER_COMMA}, takes_value="-p -e -f"),
    Tool("sqlcmd bcp osql", options={"-P": SECRET}, takes_value="-S -U -d -Q -q -i -o"),
    Tool("sqlplus", positional=0, positional_kind=USER_SLASH),
    Tool(_LDAP, options={"-w": SECRET}, takes_value=_LDAP_VALUES),
    Tool("ldappasswd", options={"-w": SECRET, "-s": SECRET, "-a": SECRET},
       takes_value="-D -H -h -p -y -t -T -Y -U -X -R -o -e -E"),
    Tool("ssh-keygen", options={"-N": SECRET, "-P": SECRET},
       takes_value="-t -b -f -C -E -F -I -n -O -V -z -a -D -G -M -S -T -W -Y -Z -r -s -w"),
    Tool("keytool jarsigner", getopt=False, options={o: SECRET for o in (
        "-storepass", "-keypass", "-srcstorepass", "-deststorepass", "-srckeypass",
        "-destkeypass", "-new")}),
    Tool("plink pscp psftp putty", getopt=False, options={"-pw": SECRET}),
    Tool("mosquitto_pub mosquitto_sub mosquitto_rr", options={"-P": SECRET, "--pw": SECRET},
       takes_value="-h -p -u -t -m -i -q -k -f -l"),
    Tool("ipmitool", options={"-P": SECRET}, takes_value="-H -U -I -p -L -C -E -f -y"),
    Tool("snmpwalk snmpget snmpset snmpbulkwalk snmpbulkget snmptrap",
       options={"-c": SECRET, "-A": SECRET, "-X": SECRET}, takes_value="-v -u -l -a -x -r -t -O"),
    Tool("useradd usermod", options={"-p": SECRET, "--password": SECRET},
       takes_value="-c -d -e -f -g -G -k -K -s -u -b -R -P"),
    Tool("security", "add-generic-password", options={"-w": SECRET}),
    Tool("security", "add-internet-password", options={"-w": SECRET}),
    Tool("gh", "secret set", options={"-b": SECRET, "--body": SECRET}),
    Tool("kubectl oc", "create secret", options={"--from-literal": NAME_EQUALS}),
    # Positional secrets of well-known CLIs.
    Tool("htpasswd", takes_value="-C -r", positional=-1, positional_min=2, positional_when="-b",
       stdin=("-i",)),
    Tool("vault bao", "login", getopt=False, positional=0, positional_skips_pairs=True,
       takes_value="-method -path -address -namespace -format -field", stdin=("-",)),
    Tool("mkpasswd", takes_value="-m -S -R -P --method --salt --rounds --password-fd",
       positional=0, stdin=("-s", "--stdin")),
    Tool("wpa_passphrase", positional=1, positional_min=2),
    Tool("rabbitmqctl", "add_user", positional=-1, positional_min=2),
    Tool("rabbitmqctl", "change_password", positional=-1, positional_min=2),
    # A secret-looking key followed by its value: aws configure set aws_secret_access_key X.
    Tool("aws", "configure set", key_value=True, takes_value="--profile --region"),
    Tool("git", "config", key_value=True, takes_value="-f --file --blob --type --default"),
    Tool("npm yarn pnpm", "config set", key_value=True),
    Tool("dotnet", "user-secrets set", key_value=True),
    Tool("launchctl", "setenv", key_value=True),
    Tool("setenv set %env %set_env", key_value=True),  # csh, fish (set -gx NAME value), IPython
    Tool("nmcli", key_value=True),  # nmcli dev wifi connect SSID password PW
    # Secrets read on standard input (echo pw | sudo -S ..., chpasswd <<< user:pw).
    Tool("passwd kinit cryptsetup", stdin=()),
    Tool("chpasswd", stdin=(), stdin_kind=USER_COLON),
    Tool("smbpasswd", stdin=("-s",)),
    Tool("gh", "auth login", stdin=("--with-token",)),
    Tool("docker", "secret create", stdin=("-",)),
    Tool("gpg gpg2", stdin=("--passphrase-fd 0", "--passphrase-fd=0")),
)

BY_NAME: dict[str, list[Tool]] = {}
for _tool in TOOLS:
    for _name in _tool.names:
        BY_NAME.setdefault(_name, []).append(_tool)

# Commands whose rules can fire on a line with none of the trigger stems (sshpass -p, curl -u).
TRIGGER_NAMES = frozenset(
    n for t in TOOLS
    if (any(k != NAMED for k in t.options.values()) or t.positional is not None
        or t.stdin is not None)
    and not any(s in w.lower() for w in t.path for s in TRIGGER_STEMS)
    for n in t.names)


def _find_path(args: list[Word], path: tuple[str, ...]) -> int | None:
    """Index after the subcommand words ``path`` in ``args`` (in order), or None."""
    j = 0
    for k, w in enumerate(args):
        if j == len(path):
            return k
        if w.value == path[j]:
            j += 1
    return len(args) if j == len(path) else None


class Analysis:
    """What the rules of one command found: spans, words already decided, whether it reads a
    secret on stdin (and of which kind)."""

    __slots__ = ("spans", "consumed", "stdin_kind")

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.consumed: set[int] = set()
        self.stdin_kind: str | None = None

    def add(self, span: Span | None) -> None:
        if span is not None:
            self.spans.append(span)


def _apply(tool: Tool, args: list[Word], begin: int, out: Analysis) -> None:
    n = len(args)
    positionals: list[int] = []
    present: set[str] = set()
    k = begin
    while k < n:
        w = args[k]
        v = w.value
        if v == "--":
            positionals.extend(range(k + 1, n))
            break
        if v in tool.options:
            present.add(v)
            out.consumed.add(k)
            if v not in tool.glued and k + 1 < n and not args[k + 1].value.startswith("-"):
                out.consumed.add(k + 1)
                out.add(value_span(args[k + 1], tool.options[v]))
                k += 1
            k += 1
            continue
        if len(v) < 2 or v[0] != "-":
            positionals.append(k)
            k += 1
            continue
        present.add(v)
        opt, eq, _ = v.partition("=")
        if eq and opt in tool.options:
            out.consumed.add(k)
            out.add(value_span(w, tool.options[opt], len(opt) + 1))
        elif not tool.getopt or v.startswith("--"):
            glued = next((g for g in tool.glued if v.startswith(g) and v not in tool.glued), None)
            if glued and not tool.getopt:
                out.consumed.add(k)
                out.add(value_span(w, tool.options[glued], len(glued)))
            elif not eq and v in tool.takes_value:
                k += 1
        else:
            for j in range(1, len(v)):
                opt = "-" + v[j]
                present.add(opt)
                if opt in tool.options:
                    out.consumed.add(k)
                    if j + 1 < len(v):
                        out.add(value_span(w, tool.options[opt], j + 1))
                    elif opt not in tool.glued and k + 1 < n and \
                            not args[k + 1].value.startswith("-"):
                        out.consumed.add(k + 1)
                        out.add(value_span(args[k + 1], tool.options[opt]))
                        k += 1
                    break
                if opt in tool.takes_value:
                    if j + 1 == len(v):
                        k += 1
                    break
        k += 1

    if tool.positional is not None and (not tool.positional_when
                                        or tool.positional_when in present):
        cands = positionals
        if tool.positional_skips_pairs:
            cands = [p for p in cands if "=" not in args[p].value and args[p].value != "-"]
        if len(cands) >= max(tool.positional_min, tool.positional + 1):
            p = cands[tool.positional]
            out.consumed.add(p)
            out.add(value_span(args[p], tool.positional_kind))
    if tool.key_value:
        for a, b in zip(positionals, positionals[1:]):
            if is_secret_name(args[a].value):
                out.consumed.add(b)
                out.add(args[b].span(0))
    if tool.stdin is not None and out.stdin_kind is None and (
            not tool.stdin or any(_given(t, args, begin, present) for t in tool.stdin)):
        out.stdin_kind = tool.stdin_kind


def _given(flag: str, args: list[Word], begin: int, present: set[str]) -> bool:
    """Whether ``flag`` (``-i``, ``-``, ``--passphrase-fd 0``) is among the arguments."""
    if flag in present:
        return True
    first, _, second = flag.partition(" ")
    for k in range(begin, len(args)):
        if args[k].value == first and (
                not second or (k + 1 < len(args) and args[k + 1].value == second)):
            return True
    return False


def option_spans(args: list[Word], out: Analysis) -> None:
    """``--password pw``, ``--api-key=pw``, ``-token pw``: options with a secret-looking name,
    for any command (options a tool rule already decided are left to it)."""
    n = len(args)
    for k, w in enumerate(args):
        v = w.value
        if k in out.consumed or len(v) < 3 or v[0] != "-":
            continue
        dashes = 2 if v[1] == "-" else 1
        name, eq, _ = v[dashes:].partition("=")
        if (dashes == 1 and len(name) < 4) or not is_secret_name(name):
            continue
        if eq:
            out.add(w.span(dashes + len(name) + 1))
        elif k + 1 < n and k + 1 not in out.consumed and not args[k + 1].value.startswith("-"):
            out.consumed.add(k + 1)
            out.add(args[k + 1].span(0))


def argv_spans(name: str, args: list[Word]) -> Analysis:
    """Secrets among ``args``, the arguments of command ``name`` (a base name)."""
    out = Analysis()
    for tool in BY_NAME.get(name, ()):
        begin = _find_path(args, tool.path) if tool.path else 0
        if begin is not None:
            _apply(tool, args, begin, out)
    option_spans(args, out)
    return out
