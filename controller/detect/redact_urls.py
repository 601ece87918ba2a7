"""Redaction rules for secrets that live in a URL or a connection string.

- user information: ``scheme://user:PASSWORD@host``, where the password ends at the
  *last* ``@`` before white space (passwords hold ``@ / : %``); a user alone that is a
  token (``https://<32 hex>@o1.ingest.sentry.io/1``, a Sentry DSN);
- webhooks whose path is the secret: Slack (``hooks.slack.com/services/T/B/X``, workflows,
  triggers), Discord (``discord.com/api/webhooks/ID/TOKEN``), Microsoft Teams
  (``*.webhook.office.com/webhookb2/...``), Telegram (``api.telegram.org/botTOKEN/``), and
  any URL with a ``/hooks/``, ``/webhook/``, ``/webhooks/`` segment: the rest of the path;
- URL parameters that carry secrets whatever their name: Apprise's header, payload and
  GET parameters (``+X-Auth=``, ``-field=``, ``:key=``, also percent-encoded), and
  Azure's SAS signature (``sig=``);
- connection strings without a scheme: Go's MySQL DSN (``user:PASSWORD@tcp(db:3306)/app``)
  and Oracle's Easy Connect (``scott/PASSWORD@//db:1521/orcl``).

Keyed query parameters (``?password=``, ``&token=``) are the keyed rule's (``redact``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from controller.detect.textspans import Span

_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://")
_URL_END = re.compile(r"[\s\"'<>`]")
_PATH_END = re.compile(r"[\s\"'<>`?#]")
_TRAILING = ".,;:)]}"
_USER_PASSWORD = re.compile(r"(?P<user>[^\s:/@\"'<>]*):")
_TOKEN_USER = re.compile(r"[A-Za-z0-9_-]{16,}@")

# where a webhook URL's secret path begins (the match's end); host-specific first
_HOOKS = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|(?:discord|discordapp)\.com/api(?:/v\d+)?/webhooks/"
    r"|\.webhook\.office\.com/webhookb2/"
    r"|api\.telegram\.org/(?:file/)?bot(?=[0-9])",
    re.I,
)
_HOOK_HOSTS = ("hooks.slack.com", "discord", ".webhook.office.com", "api.telegram.org")
_HOOK_SEGMENT = re.compile(r"/(?:hooks|webhooks?|webhookb2)/(?=[^/?#\s])", re.I)
# a URL parameter secret by its shape: Apprise's +header, -GET and :payload parameters
# (also percent-encoded, as Apprise writes them back), and an Azure SAS signature
_PARAMETER = re.compile(r"[?&](?:[+:-]|%2[bB]|%3[aA])[^=&#\s]*=|[?&]sig=")
_GO_DSN = re.compile(r"(?<![\w/@:.%-])[\w.-]*:(?P<password>\S+?)@(?:tcp6?|udp|unix)\(")
_EZ_CONNECT = re.compile(r"(?<![\w/$#])[A-Za-z][\w$#]*/(?P<password>[^\s/@\"']+)@//")

# what every match of these rules contains, in lower case (redact's quick look)
CLUES = ("://", "@tcp", "@unix", "@udp", "@//", "hooks.slack", "webhook", "api.telegram")


def url_spans(text: str) -> Iterator[Span]:
    """Every secret of the URLs in ``text`` (user information, webhook paths, secret
    parameters)."""
    scanned = 0  # a URL inside one already read (in its password) is part of it
    for match in _URL.finditer(text) if "://" in text else ():
        if match.start() < scanned:
            continue
        start = match.end()
        end_match = _URL_END.search(text, start)
        scanned = end_match.start() if end_match else len(text)
        yield from _user_information(text, start, scanned)
        if "?" in text:
            yield from _parameters(text, start, scanned)
        segment = _HOOK_SEGMENT.search(text, start, scanned)
        if segment is not None:
            yield _path_rest(text, segment.end(), scanned)
    lower = text.lower()
    if not any(host in lower for host in _HOOK_HOSTS):
        return
    for match in _HOOKS.finditer(text):  # with or without a scheme before them
        end_match = _URL_END.search(text, match.end())
        yield _path_rest(text, match.end(), end_match.start() if end_match else len(text))


def dsn_spans(text: str) -> Iterator[Span]:
    """Passwords of connection strings that have no scheme (Go's MySQL DSN, Oracle's Easy
    Connect)."""
    if "@" not in text:
        return
    for clues, rule in ((("@tcp", "@unix", "@udp"), _GO_DSN), (("@//",), _EZ_CONNECT)):
        if any(clue in text for clue in clues):
            for match in rule.finditer(text):
                yield match.span("password")


def _user_information(text: str, start: int, end: int) -> Iterator[Span]:
    password = _USER_PASSWORD.match(text, start, end)
    if password is not None:
        at = text.rfind("@", password.end(), end)  # the last @ of the authority
        if at > password.end():
            yield password.end(), at
            return
    token = _TOKEN_USER.match(text, start, end)
    if token is not None and any(c.isdigit() for c in token.group()):
        yield start, token.end() - 1


def _parameters(text: str, start: int, end: int) -> Iterator[Span]:
    for match in _PARAMETER.finditer(text, start, end):
        value_end = _until_any(text, match.end(), end, "&#")
        if value_end > match.end():
            yield match.end(), value_end


def _path_rest(text: str, start: int, end: int) -> Span:
    stop = _PATH_END.search(text, start, end)
    stop_at = stop.start() if stop else end
    while stop_at > start and text[stop_at - 1] in _TRAILING:
        stop_at -= 1
    return start, stop_at


def _until_any(text: str, start: int, end: int, stops: str) -> int:
    for at in range(start, end):
        if text[at] in stops:
            return at
    return end
