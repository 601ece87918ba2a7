"""Redaction rules for secrets on a command line, as tools print them in errors and logs.

- long flags that name a secret, with the value after a space or ``=``: ``--password X``,
  ``--db-password=X``, ``--api-key X``, ``--token X``, ``--pass X`` (redis-cli),
  ``--requirepass X``, ``--masterauth X``; Java's and OpenSSL's single-dash ones:
  ``-storepass X``, ``-keypass X``, ``-password X``, ``-passin pass:X``;
- short flags of the tools that take a password with them, glued or not, as each tool
  reads them: ``mysql -uroot -pX`` (the MySQL and MariaDB clients: glued only, since
  ``-p NAME`` asks for the password and names a database), ``sshpass -pX``, ``sqlcmd
  -PX`` (and bcp, osql, isql), ``redis-cli -a X``, ``mongosh -p X`` (and the MongoDB
  tools), ``docker login -p X``, ``curl -u user:X``, ``smbclient -U user%X``, and a
  glued ``-pX`` right after a ``-u`` user flag, whatever the tool;
- a logon on Oracle's command lines: ``sqlplus scott/X@db``;
- ``.netrc`` lines (``machine H login U password X``) and SQLite's ``PRAGMA key = 'X'``.

A command runs from its tool's name to the end of the line or a shell separator. Values
end at white space, or a quote, comma or bracket (an argv printed as a Python list:
``['mysql', '-uroot', '-pX']``); a quoted value is taken whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from controller.detect.textspans import Span, quoted, until

_LONG_WORDS = r"password|passwd|pass|secret|token|api-?key|requirepass|masterauth"
_SINGLE_DASH_WORDS = r"(?:src|dest)?(?:store|key)?pass(?:word|wd|in|out)?"
_LONG_FLAG = re.compile(
    rf"(?<![\w-])(?:--(?:[\w]*[-_])?(?:{_LONG_WORDS})|-{_SINGLE_DASH_WORDS})(?:[ \t]+|=)(?=\S)",
    re.I,
)

# tool -> (flag letter, taken glued, taken after a space)
_MYSQL_TOOLS = (
    "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow", "mysqlpump",
    "mysqlbinlog", "mysqlsh", "mysqlslap", "mariadb", "mariadb-dump", "mariadb-admin",
    "mariadb-import", "mariadb-check", "mariadb-show", "mariadb-binlog", "mariadb-slap",
)  # fmt: skip
_MONGO_TOOLS = (
    "mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport",
    "mongostat", "mongotop", "mongofiles",
)  # fmt: skip
# tool -> (flag letter, taken glued, taken after a space)
_TOOLS: dict[str, tuple[str, bool, bool]] = {
    **dict.fromkeys(_MYSQL_TOOLS, ("p", True, False)),
    "sshpass": ("p", True, True),
    **dict.fromkeys(("sqlcmd", "bcp", "osql", "isql"), ("P", True, True)),
    **dict.fromkeys(("redis-cli", "keydb-cli", "valkey-cli"), ("a", False, True)),
    **dict.fromkeys(_MONGO_TOOLS, ("p", True, True)),
    "login": ("p", False, True),  # docker/podman/nerdctl/helm registry login -p X
    "curl": ("u", True, True),  # -u user:X
    **dict.fromkeys(("smbclient", "rpcclient", "smbcacls"), ("U", True, True)),  # -U user%X
}
_TOOL = re.compile(  # its name, or the end of its path (/usr/bin/mysql)
    r"(?<![\w.-])(?P<tool>"
    + "|".join(sorted(map(re.escape, _TOOLS), key=len, reverse=True))
    + r")(?:\.exe)?(?=[\s'\",\]]|$)"
)
_ORACLE_TOOLS = ("sqlplus", "rman", "expdp", "impdp", "sqlldr", "dgmgrl")
_ORACLE_TOOL = re.compile(r"(?<![\w.-])(?:" + "|".join(_ORACLE_TOOLS) + r")\b")
_ORACLE_LOGON = re.compile(r"(?<=[\s'\"\[,])[A-Za-z][\w$#]*/(?P<password>[^\s@'\"/,\]]+)")
_COMMAND_END = re.compile(r"\n|;|\|\||&&|\|(?!\|)")
_BOUNDARY = frozenset(" \t'\"[,(")
_NEXT_ELEMENT = re.compile(r"(['\"])[ \t]*,[ \t]*(?=['\"])")
_AFTER_USER = re.compile(r"(?<![\w-])-u(?:\S+|[ \t]+[^\s-]\S*)[ \t]+-p(?=[^\s'\",\]])")
_NETRC = re.compile(
    r"(?:\bmachine[ \t]+\S+[ \t]+(?:login[ \t]+\S+[ \t]+)?|\bdefault[ \t]+login[ \t]+\S+[ \t]+)"
    r"password[ \t]+(?=\S)"
)
_PRAGMA_KEY = re.compile(r"\bpragma[ \t]+(?:re)?key[ \t]*=[ \t]*", re.I)

# what every match of these rules contains, in lower case (redact's quick look), and the
# one clue that is a pattern (a -p flag after a -u flag)
_LONG_CLUES = ("pass", "token", "secret", "key", "auth")
CLUES = (*_LONG_CLUES, *_TOOLS, *_ORACLE_TOOLS, "pragma")
CLUE_PATTERN = r"-u\S*\s+-p"


def argv_spans(text: str) -> Iterator[Span]:
    """Every secret on the command lines in ``text``."""
    lower = text.lower()  # each rule runs only where its words are: most text has none
    if any(word in lower for word in _LONG_CLUES):
        yield from _long_flags(text)
    if any(tool in lower for tool in _TOOLS):
        yield from _tool_flags(text)
    if any(tool in lower for tool in _ORACLE_TOOLS):
        yield from _oracle_logons(text)
    if "-u" in text:
        for match in _AFTER_USER.finditer(text):
            yield _value(text, match.end(), _before(text, match.end() - 2))
    for clue, rule in (("password", _NETRC), ("pragma", _PRAGMA_KEY)):
        if clue in lower:
            for match in rule.finditer(text):
                yield _value(text, match.end(), " ")


def _long_flags(text: str) -> Iterator[Span]:
    covered = 0
    for match in _LONG_FLAG.finditer(text):
        if match.start() < covered:
            continue
        span = _value(text, match.end(), _before(text, match.start()))
        covered = span[1]
        yield span


def _tool_flags(text: str) -> Iterator[Span]:
    for tool in _TOOL.finditer(text):
        letter, glued, spaced = _TOOLS[tool.group("tool")]
        end = _command_end(text, tool.end())
        at = tool.end()
        while (dash := text.find("-" + letter, at, end)) >= 0:
            at = dash + 2
            before = _before(text, dash)
            if before not in _BOUNDARY:
                continue  # inside a word or a longer flag
            after = text[at] if at < end else ""
            if after and after not in " \t,])'\"":
                if glued:
                    yield _secret_part(text, _value(text, at, before), letter)
            elif after in ("'", '"') and before in " \t(":
                if glued:  # a shell-quoted value: -p'my pass'
                    yield _secret_part(text, _value(text, at, before), letter)
            elif spaced and (value_at := _next_argument(text, at, end, before)) is not None:
                yield _secret_part(text, _value(text, value_at, " "), letter)


def _next_argument(text: str, at: int, end: int, before: str) -> int | None:
    """Where the argument after a flag ending at ``at`` begins (after white space, or the
    next element of an argv printed as a list); None when none follows or it is a flag."""
    if before in ("'", '"'):
        element = _NEXT_ELEMENT.match(text, at, end)
        if element is None or element.group(1) != before:
            return None
        value_at = element.end()
        return value_at if not text.startswith("-", value_at + 1) else None
    if at >= end or text[at] not in " \t":
        return None
    while at < end and text[at] in " \t":
        at += 1
    return at if at < end and text[at] != "-" else None


def _oracle_logons(text: str) -> Iterator[Span]:
    for tool in _ORACLE_TOOL.finditer(text):
        end = _command_end(text, tool.end())
        for logon in _ORACLE_LOGON.finditer(text, tool.end(), end):
            yield logon.span("password")


def _secret_part(text: str, span: Span, letter: str) -> Span:
    """Of ``user:X`` (curl) or ``user%X`` (smbclient), only X."""
    if letter in "uU":
        separator = ":" if letter == "u" else "%"
        cut = text.find(separator, span[0], span[1])
        return (cut + 1, span[1]) if cut >= 0 else (span[1], span[1])
    return span


def _value(text: str, start: int, opener: str) -> Span:
    """The value starting at ``start``: quoted, or to white space; inside an argv printed
    as a list (``opener``, the character before the flag, is its quote) to that quote."""
    inside = quoted(text, start)
    if inside is not None:
        return inside
    if opener in ("'", '"'):
        return start, until(text, start, opener + " \t\r\n")
    return start, until(text, start, " \t\r\n")


def _before(text: str, at: int) -> str:
    return text[at - 1] if at > 0 else " "


def _command_end(text: str, start: int) -> int:
    found = _COMMAND_END.search(text, start)
    return found.start() if found else len(text)
