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
- URLs and connection strings (``redact_urls``): a URL's user information
  (``scheme://user:PASSWORD@host``, the password ending at the *last* ``@`` before white
  space), webhook URLs whose path is the secret (Slack, Discord, Teams, Telegram, any
  ``/hooks/`` or ``/webhook/`` path), secret URL parameters (Apprise's ``+ - :`` ones, a
  SAS ``sig``), Go's MySQL DSN and Oracle's Easy Connect.
- HTTP headers: ``Authorization`` (any scheme), ``Cookie`` and ``Set-Cookie`` values; a
  bare ``Bearer``/``Basic`` credential that looks like one (not "Basic authentication").
- command lines (``redact_argv``): ``--password VALUE`` style flags, the short flags of
  the tools that take a password (``mysql -pX``, ``sshpass -pX``, ``sqlcmd -PX``,
  ``redis-cli -a X`` ...), ``.netrc`` lines, ``PRAGMA key``.
- private key blocks, JSON Web Tokens, and the token formats of AWS, Alibaba, GitHub,
  GitLab, Slack, Google, Stripe, npm, PyPI, Docker Hub, OpenAI and Anthropic, Hugging
  Face, SendGrid, Mailgun, Shopify, DigitalOcean, HashiCorp Vault, Grafana, Atlassian,
  Databricks, Telegram, New Relic, Postman, Linear and age.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TextIO

from controller.detect import redact_argv, redact_urls
from controller.detect.textspans import Span, line_end, quoted, until

MASK = "***"

__all__ = ["MASK", "RedactedStream", "Span", "all_spans", "mask", "overlaps", "redact"]

# Words a key ends with when its value is a secret. Those in _NEEDS_SEPARATOR only count
# after a separator (DB_PASS, DB_PWD, REDISCLI_AUTH) or as a quoted key ("auth": in a
# Docker config.json), so that "bypass", "compass", "oauth" and the shell's PWD (a
# directory) stay as they are.
_WORDS = (
    r"password|passwd|passphrase|secret|token|credentials?|signature"
    r"|api[_-]?key|(?:access|secret|private|signing|encryption|master|client|auth|account"
    r"|license|shared|service|session)[_-]?key"
    r"|session[_-]?id|sessionid|pass|pwd|auth"
)
_NEEDS_SEPARATOR = frozenset({"pass", "pwd", "auth"})
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
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END_LINE = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_FIRST_WORD = re.compile(r"[ \t]*[^ \t]+")
# Token formats, each with what its match contains in lower case (a substring test
# before the regex: most text holds none of them).
_TOKENS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")),  # JWT
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),  # AWS access key id
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    ),  # GitHub
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b")),
    (("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b")),  # GitLab
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),  # Slack
    (("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])")),  # Google
    (("k_live_", "k_test_"), re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),  # Stripe
    (("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),  # npm
    (("ya29.",), re.compile(r"\bya29\.[0-9A-Za-z_-]{20,}")),  # Google OAuth access token
    (("ltai",), re.compile(r"\bLTAI[0-9A-Za-z]{12,20}\b")),  # Alibaba Cloud access key id
    (("_v1_",), re.compile(r"\bdo[por]_v1_[a-f0-9]{64}\b")),  # DigitalOcean
    (
        ("sk-",),
        re.compile(r"(?<![\w-])sk-(?:proj-|ant-[a-z]+\d\d-)?[A-Za-z0-9_-]{20,}"),
    ),  # OpenAI, Anthropic
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),  # Hugging Face
    (("sg.",), re.compile(r"\bSG\.[\w-]{16,32}\.[\w-]{16,64}")),  # SendGrid
    (("key-",), re.compile(r"(?<![\w-])key-[0-9a-f]{32}\b")),  # Mailgun
    (("shp",), re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b")),  # Shopify
    (("pypi-",), re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}")),  # PyPI
    (("dckr_pat_",), re.compile(r"\bdckr_pat_[A-Za-z0-9_-]{20,}")),  # Docker Hub
    (("hvs.", "hvb."), re.compile(r"\bhv[sb]\.[A-Za-z0-9_-]{24,}")),  # HashiCorp Vault
    (("glsa_",), re.compile(r"\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b")),  # Grafana service account
    (("glc_",), re.compile(r"\bglc_[A-Za-z0-9+/]{32,}={0,2}")),  # Grafana Cloud
    (("atatt3",), re.compile(r"\bATATT3[A-Za-z0-9_=-]{20,}")),  # Atlassian
    (("dapi",), re.compile(r"\bdapi[0-9a-f]{32}(?:-\d)?\b")),  # Databricks
    ((":aa",), re.compile(r"\b\d{8,10}:AA[0-9A-Za-z_-]{33}(?![\w-])")),  # Telegram bot
    (("whsec_",), re.compile(r"\bwhsec_[A-Za-z0-9+/]{24,}")),  # Stripe webhook signing secret
    (("nrak-",), re.compile(r"\bNRAK-[A-Z0-9]{27}\b")),  # New Relic
    (("pmak-",), re.compile(r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b")),  # Postman
    (("lin_api_",), re.compile(r"\blin_api_[A-Za-z0-9]{40}\b")),  # Linear
    (("age-secret-key-",), re.compile(r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b")),  # age
]


# Something every rule's match contains, in lower case: ASCII text with none of these
# holds no secret, and one search costs much less than every rule (a log line almost never
# holds a secret). Text that is not ASCII goes through every rule: lower-casing it may not
# agree with the rules' own ignoring of case.
_CLUE_WORDS = (
    "pass", "pwd", "secret", "token", "credential", "signature", "key", "session", "cookie",
    "auth", "bearer", "basic", "-----begin",
    *(clue for clues, _ in _TOKENS for clue in clues),
    *redact_urls.CLUES,
    *redact_argv.CLUES,
)  # fmt: skip


def _trie(words: list[str]) -> str:
    """A regex matching any of ``words``, grouped by their first characters: Python's
    regex engine tries far fewer branches at each position than with a flat list."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    parts = []
    for first, rests in sorted(groups.items()):
        if "" in rests:  # the shortest word of the group is enough for a clue
            parts.append(re.escape(first))
        elif len(rests) == 1:
            parts.append(re.escape(first) + re.escape(rests[0]))
        else:
            parts.append(re.escape(first) + "(?:" + _trie(rests) + ")")
    return "|".join(parts)


_CLUES = re.compile(_trie(sorted(set(_CLUE_WORDS))) + "|" + redact_argv.CLUE_PATTERN)


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
    found = sorted(span for rule in _RULES for span in rule(text) if span[1] > span[0])
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
        quoted_key = match.group("quote") is not None
        word = match.group("word").lower()
        if word in _NEEDS_SEPARATOR and not (
            (compound and text[word_start - 1] in "_.-")
            or (quoted_key and not compound and word != "pwd")  # {"auth": ...}, not PWD
        ):
            continue
        before = _before(text, key_start)
        at_line_start = before in _LINE_START or (
            before == "-" and _before(text, _skip_back(text, key_start) - 1) in _LINE_START
        )
        colon = match.group("sep") == ":"
        # a bare key and ':' after a word reads as a sentence ("using password: YES",
        # "invalid token: signature has expired") unless the value has a digit or symbol
        in_sentence = colon and not (
            compound or quoted_key or at_line_start or before in _KEY_CONTEXT
        )
        start = match.end()
        inside = quoted(text, start)
        if inside is not None:
            covered = inside[1]
            yield inside
            continue
        if colon and at_line_start:  # a header or a YAML line: the value is the whole line
            end = line_end(text, start)
        elif quoted_key:  # JSON or a dict: a bare value (number, literal) ends at , } ]
            end = until(text, start, " \t\r\n,}]")
        elif before in ("?", "&") or (  # a query string (Apprise's ?+header=, &-field=)
            before != ""
            and before in "+:-"
            and _before(text, _skip_back(text, key_start) - 1) in ("?", "&")
        ):
            end = until(text, start, " \t\r\n&#")
        else:
            end = until(text, start, " \t\r\n")
        value = text[start:end].rstrip(".,;:)]}")
        if value.lower() in _STOPWORDS:
            continue
        if _KEY_END.match(text, start) is not None:
            # the value begins with the next key ("password:password: x"): that key's own
            # match masks what follows it, already masked or not (redacting twice
            # changes nothing)
            continue
        if colon and not compound and _prose_follows(text, start, until(text, start, " \t")):
            continue
        if in_sentence and (value.isalpha() or (value.isdigit() and len(value) <= 3)):
            continue  # a word or a status code after "token:" in a sentence
        covered = end
        yield start, end


def _authorization(text: str) -> Iterator[Span]:
    covered = 0
    for match in _AUTHORIZATION.finditer(text):
        if match.start() < covered:
            continue
        start = match.end()
        inside = quoted(text, start)
        if inside is not None:
            scheme = _SCHEME.match(text, inside[0], inside[1])
            covered = inside[1]
            yield (scheme.end() if scheme else inside[0]), inside[1]
            continue
        scheme = _SCHEME.match(text, start)
        covered = line_end(text, start)
        yield (scheme.end() if scheme else start), covered


def _cookies(text: str) -> Iterator[Span]:
    covered = 0
    for match in _COOKIE.finditer(text):
        if match.start() < covered:
            continue
        start = match.end()
        inside = quoted(text, start)
        if inside is not None:
            covered = inside[1]
            yield inside
            continue
        end = line_end(text, start)
        first = _FIRST_WORD.match(text, start, end)
        if first is not None and "=" in first.group():  # a pair, not "cookie: not found"
            covered = end
            yield start, end


def _bare(text: str) -> Iterator[Span]:
    for match in _BARE_CREDENTIAL.finditer(text):
        value = match.group("value").rstrip(".")  # a full stop ends the sentence
        if _looks_like_credential(value):
            yield match.start("value"), match.start("value") + len(value)


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
    lower = text.lower()
    for clues, rule in _TOKENS:
        if any(clue in lower for clue in clues):
            for match in rule.finditer(text):
                yield match.span()


_RULES = (
    _keyed,
    redact_urls.url_spans,
    redact_urls.dsn_spans,
    _authorization,
    _cookies,
    _bare,
    redact_argv.argv_spans,
    _blocks,
    _tokens,
)


# --- helpers ------------------------------------------------------------------------------


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
    traceback) is masked even when the code that logged it did not think of it.

    ``json_lines``: each line written is a JSON object (``--log-format json``); every
    string in it is redacted and the object written again, so a mask never eats a
    closing quote (a value masked "to the next white space" would, in the JSON text).
    """

    def __init__(self, stream: TextIO, json_lines: bool = False) -> None:
        self._stream = stream
        self._json = json_lines

    def write(self, text: str) -> None:
        if self._json:
            text = "".join(_redacted_json_line(line) for line in text.splitlines(keepends=True))
        else:
            text = redact(text)
        self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


def _redacted_json_line(line: str) -> str:
    try:
        value = json.loads(line)
    except ValueError:
        return redact(line)
    ending = line[len(line.rstrip("\r\n")) :]
    return json.dumps(_redacted_value(value), ensure_ascii=False) + ending


def _redacted_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted_value(item) for item in value]
    return value
