"""The one redaction engine: secrets masked before a line is stored, reported or logged.

Every piece of container text the controller keeps or prints passes here: log records
(evidence, samples, the shown line, discovery templates), a failed healthcheck's or exec
probe's output, a runbook's or hook's output, `docker compose` stderr, and, as a last net,
every line of the controller's own log. Masks keep the key and the shape
(``DB_PASSWORD=***``, ``postgres://app:***@db/app``, ``Authorization: Bearer ***``) so a
reader still sees what kind of value was there.

The engine finds secret *spans* (``secret_spans``) and ``redact`` replaces them, so a
caller can tell whether a piece of a line (a pattern's named capture) lies in a secret.
Each rule looks at the original text; overlapping spans are merged. Redacting twice gives
the same text as redacting once.

The rules, and why each has the shape it has:

- a key that *ends* in a secret word, whatever comes before it (``DB_PASSWORD``,
  ``PGPASSWORD``, ``SECRET_TOKEN``, ``aws_secret_access_key``, ``X-Api-Key``), then ``=``
  or ``:``, then a value: quoted (to its closing quote, escapes honoured, spaces
  included), or bare (to the next white space; in JSON to the next ``,`` ``}`` ``]``; in a
  query string to the next ``&``). A key followed by ``:`` is only a key where data has
  keys (at a line's start, after ``{ , ; ( [`` or a quote, when the key is compound, or
  when the value has a digit or a symbol), so prose such as "invalid token: signature has
  expired" or "using password: YES" stays as it is.
- a URL's user information: ``scheme://user:PASSWORD@host``, where the password ends at
  the *last* ``@`` before white space, so passwords holding ``@ / : %`` are masked whole.
- HTTP headers: ``Authorization`` (any scheme), ``Cookie`` and ``Set-Cookie`` values; a
  bare ``Bearer``/``Basic`` credential that looks like one (not "Basic authentication").
- ``--password VALUE`` style command-line flags.
- private key blocks, JSON Web Tokens, and the token formats of AWS, GitHub, GitLab,
  Slack, Google, Stripe and npm.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

MASK = "***"

Span = tuple[int, int]

# Words a key ends with when its value is a secret. Those in _NEEDS_SEPARATOR only count
# after a separator (DB_PASS, DB_PWD), so that "bypass", "compass" and the shell's PWD
# (a directory) stay as they are.
_WORDS = (
    r"password|passwd|passphrase|secret|token|credentials?|signature"
    r"|api[_-]?key|(?:access|secret|private|signing|encryption|master|client|auth|account"
    r"|license|shared|service|session)[_-]?key"
    r"|session[_-]?id|sessionid|pass|pwd"
)
_NEEDS_SEPARATOR = frozenset({"pass", "pwd"})
# what may follow the word and still be the same secret (PASSWORD2, secret_key_base)
_TAIL = r"(?:[_.-]?(?:[0-9]{1,3}|new|old|hash|base|b64|value|val))?"
_KEY_END = re.compile(
    rf"(?P<word>{_WORDS}){_TAIL}(?P<quote>\\?[\"'])?[ \t]*(?P<sep>:=|=>|=|:)[ \t]*", re.I
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# what may stand before a bare key followed by ':' (else it is a word of a sentence)
_LINE_START = frozenset({"", "\n", "\r"})
_KEY_CONTEXT = frozenset("{[(,;|:>\"'-")
# values that are never a secret, only a state: "using password: YES", "token: expired"
_STOPWORDS = frozenset(
    {
        "yes", "no", "true", "false", "null", "nil", "none", "empty", "set", "unset",
        "missing", "invalid", "expired", "required", "incorrect", "wrong", "ok", "denied",
        "provided", "given", "redacted", "hidden", "masked", "present", "absent", "n/a",
        "undefined", "changed", "disabled", "enabled",
    }
)  # fmt: skip

_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^\s:/@\"'<>]*):")
_URL_END = re.compile(r"[\s\"'<>]")

_AUTHORIZATION = re.compile(
    r"(?<![A-Za-z0-9_-])(?:proxy-)?authorization(?P<quote>\\?[\"'])?[ \t]*[:=][ \t]*", re.I
)
_SCHEME = re.compile(
    r"(?:bearer|basic|digest|token|negotiate|ntlm|apikey|aws4-hmac-sha256|sharedkey)[ \t]+",
    re.I,
)
_COOKIE = re.compile(r"(?<![A-Za-z0-9_-])(?:set-)?cookie(?P<quote>\\?[\"'])?[ \t]*[:=][ \t]*", re.I)
_BARE_CREDENTIAL = re.compile(
    r"(?<![A-Za-z0-9_-])(?:bearer|basic)[ \t]+(?P<value>[A-Za-z0-9._~+/-]+=*)", re.I
)
_FLAG = re.compile(
    r"(?<![\w-])--[\w-]*?(?:password|passwd|secret|token|api-?key)(?:[ \t]+|=)(?=\S)", re.I
)
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END_LINE = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_FIRST_WORD = re.compile(r"[ \t]*[^ \t]+")
_TOKENS = [
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),  # JWT
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),  # GitLab
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google
    re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b"),  # Stripe
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),  # npm
]


# Something every rule's match contains, in lower case: ASCII text with none of these
# holds no secret, and one search costs much less than every rule (a log line almost never
# holds a secret). Text that is not ASCII goes through every rule: lower-casing it may not
# agree with the rules' own ignoring of case.
_CLUES = re.compile(
    r"pass|pwd|secret|token|credential|signature|key|session|://|authorization|cookie"
    r"|bearer|basic|-----begin|eyj|akia|asia|gh[pousr]_|github_pat_|glpat-|xox[abposr]-"
    r"|aiza|[rs]k_(?:live|test)_|npm_"
)


def _clean(text: str) -> bool:
    """Certainly no secret in ``text`` (the rules need not look)."""
    return text.isascii() and _CLUES.search(text.lower()) is None


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``***``."""
    return text if _clean(text) else mask(text, all_spans(text))


def mask(text: str, spans: list[Span]) -> str:
    """``text`` with ``spans`` (sorted, merged) replaced by ``***``."""
    if not spans:
        return text
    out: list[str] = []
    at = 0
    for start, end in spans:
        out += [text[at:start], MASK]
        at = end
    out.append(text[at:])
    return "".join(out)


def secret_spans(text: str) -> list[Span]:
    """Where the secrets of ``text`` are: sorted, merged, non-empty (start, end) pairs."""
    return [] if _clean(text) else all_spans(text)


def all_spans(text: str) -> list[Span]:
    """``secret_spans`` by every rule, without the quick look for clues first."""
    found = sorted(
        span
        for rule in (_keyed, _urls, _authorization, _cookies, _bare, _flags, _blocks, _tokens)
        for span in rule(text)
        if span[1] > span[0]
    )
    merged: list[Span] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def overlaps(span: Span, spans: list[Span]) -> bool:
    """True when ``span`` shares a character with any of ``spans``."""
    return any(start < span[1] and span[0] < end for start, end in spans)


# --- the rules ----------------------------------------------------------------------------


def _keyed(text: str) -> Iterator[Span]:
    covered = 0  # a key inside a value already masked is masked with it
    for match in _KEY_END.finditer(text):
        if match.start() < covered:
            continue
        word_start = match.start("word")
        key_start = word_start
        while key_start > 0 and text[key_start - 1] in _KEY_CHARS:
            key_start -= 1
        compound = key_start < word_start
        if match.group("word").lower() in _NEEDS_SEPARATOR and not (
            compound and text[word_start - 1] in "_.-"
        ):
            continue
        before = _before(text, key_start)
        at_line_start = before in _LINE_START or (
            before == "-" and _before(text, _skip_back(text, key_start) - 1) in _LINE_START
        )
        quoted_key = match.group("quote") is not None
        colon = match.group("sep") == ":"
        # a bare key and ':' after a word reads as a sentence ("using password: YES",
        # "invalid token: signature has expired") unless the value has a digit or symbol
        in_sentence = colon and not (
            compound or quoted_key or at_line_start or before in _KEY_CONTEXT
        )
        start = match.end()
        quoted = _quoted(text, start)
        if quoted is not None:
            covered = quoted[1]
            yield quoted
            continue
        if colon and at_line_start:  # a header or a YAML line: the value is the whole line
            end = _line_end(text, start)
        elif quoted_key:  # JSON or a dict: a bare value (number, literal) ends at , } ]
            end = _until(text, start, " \t\r\n,}]")
        elif before in ("?", "&"):  # a query string
            end = _until(text, start, " \t\r\n&#")
        else:
            end = _until(text, start, " \t\r\n")
        value = text[start:end].rstrip(".,;:)]}")
        if value.lower() in _STOPWORDS:
            continue
        if _KEY_END.match(text, start) is not None:
            # the value begins with the next key ("password:password: x"): that key's own
            # match masks what follows it, already masked or not (redacting twice
            # changes nothing)
            continue
        if colon and not compound and _prose_follows(text, start, _until(text, start, " \t")):
            continue
        if in_sentence and (value.isalpha() or (value.isdigit() and len(value) <= 3)):
            continue  # a word or a status code after "token:" in a sentence
        covered = end
        yield start, end


def _urls(text: str) -> Iterator[Span]:
    scanned = 0  # a URL inside one already read (in its password) is part of it
    for match in _URL.finditer(text):
        if match.start() < scanned:
            continue
        start = match.end()
        end_match = _URL_END.search(text, start)
        scanned = end_match.start() if end_match else len(text)
        at = text.rfind("@", start, scanned)  # the last @ of the authority: passwords hold @
        if at > start:
            yield start, at


def _authorization(text: str) -> Iterator[Span]:
    covered = 0
    for match in _AUTHORIZATION.finditer(text):
        if match.start() < covered:
            continue
        start = match.end()
        quoted = _quoted(text, start)
        if quoted is not None:
            scheme = _SCHEME.match(text, quoted[0], quoted[1])
            covered = quoted[1]
            yield (scheme.end() if scheme else quoted[0]), quoted[1]
            continue
        scheme = _SCHEME.match(text, start)
        covered = _line_end(text, start)
        yield (scheme.end() if scheme else start), covered


def _cookies(text: str) -> Iterator[Span]:
    covered = 0
    for match in _COOKIE.finditer(text):
        if match.start() < covered:
            continue
        start = match.end()
        quoted = _quoted(text, start)
        if quoted is not None:
            covered = quoted[1]
            yield quoted
            continue
        end = _line_end(text, start)
        first = _FIRST_WORD.match(text, start, end)
        if first is not None and "=" in first.group():  # a pair, not "cookie: not found"
            covered = end
            yield start, end


def _bare(text: str) -> Iterator[Span]:
    for match in _BARE_CREDENTIAL.finditer(text):
        value = match.group("value").rstrip(".")  # a full stop ends the sentence
        if _looks_like_credential(value):
            yield match.start("value"), match.start("value") + len(value)


def _flags(text: str) -> Iterator[Span]:
    covered = 0
    for match in _FLAG.finditer(text):
        if match.start() < covered:
            continue
        start = match.end()
        quoted = _quoted(text, start)
        span = quoted if quoted is not None else (start, _until(text, start, " \t\r\n"))
        covered = span[1]
        yield span


def _blocks(text: str) -> Iterator[Span]:
    at = 0
    while (begin := _KEY_BEGIN.search(text, at)) is not None:
        end = _KEY_END_LINE.search(text, begin.end())
        if end is None:  # cut before its end: the rest is the key
            yield begin.end(), len(text)
            return
        yield begin.end(), end.start()
        at = end.end()


def _tokens(text: str) -> Iterator[Span]:
    for rule in _TOKENS:
        for match in rule.finditer(text):
            yield match.span()


# --- helpers ------------------------------------------------------------------------------


def _quoted(text: str, start: int) -> Span | None:
    """The inside of a quoted value starting at ``start`` (``"..."``, ``'...'``, or with
    escaped quotes ``\\"...\\"`` as JSON inside JSON has them); an unclosed quote runs to
    the end of the line. None when no quote starts there."""
    escaped = text.startswith("\\", start)
    opening = start + 1 if escaped else start
    if opening >= len(text) or text[opening] not in "\"'`":
        return None
    quote = text[opening]
    at = opening + 1
    skip_next = False
    while at < len(text) and text[at] != "\n":
        # one character of the value, and how many characters of text it takes: inside
        # an escaped string, \\ is a backslash and \" a quote of the inner string
        char, width = text[at], 1
        if escaped and char == "\\" and at + 1 < len(text) and text[at + 1] in ("\\", quote):
            char, width = text[at + 1], 2
        elif escaped and char == quote:
            char = ""  # a bare quote inside an escaped string is just a character
        if skip_next:
            skip_next = False
        elif char == "\\":
            skip_next = True
        elif char == quote:
            return opening + 1, at
        at += width
    return opening + 1, at


def _until(text: str, start: int, stops: str) -> int:
    """The index of the first of ``stops`` at or after ``start`` (or the text's end)."""
    stop = _STOPS.get(stops)
    if stop is None:
        stop = _STOPS[stops] = re.compile("[" + re.escape(stops) + "]")
    found = stop.search(text, start)
    return found.start() if found else len(text)


_STOPS: dict[str, re.Pattern[str]] = {}


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    return end - 1 if end > start and text[end - 1] == "\r" else end


def _skip_back(text: str, at: int) -> int:
    """The index just after the last non-blank character before ``at``."""
    while at > 0 and text[at - 1] in " \t":
        at -= 1
    return at


def _before(text: str, at: int) -> str:
    """The last non-blank character before ``at`` ("" at the start of the text)."""
    at = _skip_back(text, at)
    return text[at - 1] if at > 0 else ""


def _prose_follows(text: str, start: int, end: int) -> bool:
    """A lower-case word followed by another word: a sentence, not a value."""
    value = text[start:end].rstrip(".,;:)]}")
    if not value.isalpha() or not value.islower():
        return False
    rest = text[end : end + 2]
    return len(rest) == 2 and rest[0] == " " and rest[1].isalpha()


def _looks_like_credential(value: str) -> bool:
    """Long enough, and not a plain word: a digit, a symbol, or a capital inside it."""
    if len(value) < 8:
        return False
    return (
        any(c.isdigit() for c in value)
        or any(c in "+/=._~-" for c in value)
        or any(c.isupper() for c in value[1:])
    )


class RedactedStream:
    """A text stream that redacts what is written to it: the sink of the controller's own
    log, so a line that quotes container text (a step's error, an engine's message, a
    traceback) is masked even when the code that logged it did not think of it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        self._stream.write(redact(text))

    def flush(self) -> None:
        self._stream.flush()
