"""What a connection or database error names: the hosts and ports in one redacted line.

Pure. It is the evidence root causes are linked by (``reconcile.root_causes``): an
error is a dependency's fault only when it names that dependency, or names nothing.

Where the pattern has named captures for it (``host``, ``hostname``, ``server``,
``port``, ``addr``, ``address``, ``endpoint``, ``upstream``, ``url``, ``dsn``,
``target``, ``peer``), they are what the error names. Otherwise the line is read for the
forms clients print, and only those, so that a stray word never passes for a host:

- URLs and DSNs: ``postgres://app:***@db:5432/app``, ``http://backend/``,
  ``upstream: "http://172.18.0.5:8000/..."`` (in an nginx line, the upstream alone: its
  ``client``, ``server``, ``request`` and ``host`` fields name the request's parties);
- ``host:port`` and ``[v6]:port`` (``db:5432``, ``127.0.0.1:6379``, Node's
  ``ECONNREFUSED ::1:5432``), never a source position (``Pool.java:456``), a time or a
  word used as a key (``retry:3``); of ``local->remote`` only the remote;
- keys: ``host=db``, ``host='web', port=8000``, ``"host": "db"``, ``Server=db;Port=5432``;
- phrases: ``server at "db"``, ``server on 'db'``, ``on host "localhost"``, ``host name
  "db"``, ``getaddrinfo ENOTFOUND db``, ``lookup db`` (not the resolver after it),
  ``UnknownHostException: kafka``, ``Unknown MySQL server host 'db'``, nginx's ``app
  could not be resolved``, Python's ``('mongo', 27017)``;
- a bare ``port 5432`` (``port=5432``, ``port: 5432``) belongs to the nearest host named
  before it without a port (psycopg2's ``server at "db" (172.18.0.2), port 5432``), else
  stands alone as ``:5432``.

What comes out is ``model.Endpoint`` text: ``host:port``, ``host``, ``:port``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from controller.detect.redact import MASK
from controller.model import Endpoint

MAX_NAMED = 8  # endpoints kept per line

_HOST = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?"
_V6 = r"[0-9A-Fa-f:.%]+"  # checked for a colon when read (model.Endpoint.parse)
_PORT = r"[0-9]{1,5}"

# what is blanked before reading: dates and times (``2026-11-28T04:36:36``), the local
# side of ``local->remote``, the resolver of a DNS lookup
_DATETIME = re.compile(
    r"\d{4}[-/]\d\d[-/]\d\d(?:[T ]\d\d:\d\d(?::\d\d)?(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)?"
)
_TIME = re.compile(r"(?<![\d.:])\d\d:\d\d:\d\d(?:[.,]\d+)?(?![\d:])")
_LOCAL_SIDE = re.compile(r"[\w.:\[\]%-]+->")
_RESOLVER = re.compile(rf"(?i)\b(lookup[ \t]+{_HOST})[ \t]+on[ \t]+\S+")
# nginx: the upstream is the target; client, server, request, host, referrer are not
_NGINX = re.compile(r", (?:client|server|request|host|referrer|upstream): (?:\"[^\"]*\"|[^\s,]+)")
_NGINX_UPSTREAM = re.compile(r", upstream: \"(?P<url>[^\"]*)\"")

_URL = re.compile(
    rf"(?i)\b[a-z][a-z0-9+.-]*://(?:[^\s/@\"'<>]*@)?"
    rf"(?P<hosts>(?:\[{_V6}\]|{_HOST})?(?::{_PORT})?(?:,(?:\[{_V6}\]|{_HOST})(?::{_PORT})?)*)"
)
_HOST_PORT = re.compile(
    rf"(?<![\w.:%@\[-])(?:\[(?P<v6>{_V6})\]|(?P<host>{_HOST})):(?P<port>{_PORT})(?!\w|:\d)"
)
_NODE_V6 = re.compile(
    rf"\bE[A-Z]+ (?P<v6>(?:[0-9A-Fa-f]*:){{2,7}}[0-9A-Fa-f]*):(?P<port>{_PORT})\b"
)
# ``key=value`` any way; ``key: value`` only where data has keys (a quote around the key
# or the value), so that prose ("could not connect to server: Connection refused") is not
_KEYS = r"(?:host|hostname|server|addr|address|endpoint)"
_VALUE = rf"(?P<value>\[{_V6}\](?::{_PORT})?|{_HOST}(?::{_PORT})?)"
_KEYED = re.compile(
    rf"(?i)(?<![\w.-])(?:{_KEYS}[ \t]*=[ \t]*[\"'`]?"
    rf"|[\"']{_KEYS}[\"'][ \t]*[:=][ \t]*[\"'`]?"
    rf"|{_KEYS}[ \t]*:[ \t]*[\"'`]){_VALUE}"
)
_PHRASES = re.compile(
    r"(?i)(?:(?:\bserver[ \t]+(?:at|on)|\bon[ \t]+host|\bhost[ \t]+name"
    r"|\bUnknown MySQL server host)[ \t]+(?P<quote>[\"'])"
    rf"{_VALUE}(?P=quote)"
    r"|(?:\bgetaddrinfo[ \t]+(?:ENOTFOUND|EAI_AGAIN)|\blookup|\bUnknownHostException:)[ \t]+"
    rf"{_VALUE.replace('value', 'bare')}(?![\w.-]))"
)
_RESOLVED = re.compile(rf"(?<![\w.-])(?P<value>{_HOST}) could not be resolved\b")
_TUPLE = re.compile(rf"\([ \t]*'(?P<host>{_HOST})'[ \t]*,[ \t]*(?P<port>{_PORT})[ \t]*\)")
_BARE_PORT = re.compile(
    rf"(?i)(?<![\w.-])port[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?(?P<port>{_PORT})(?![\w.])"
)
# the cheap clues each form needs before its regex is run
_TIME_CLUE = re.compile(r"\d:\d\d:\d")
_PORT_CLUE = re.compile(r":[0-9]")
_NAMED_FORMS = (
    (_KEYED, ("host", "server", "addr", "endpoint")),
    (_PHRASES, ("server", "host", "getaddrinfo", "lookup")),
    (_RESOLVED, ("could not be resolved",)),
)
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}")

# a host:port whose "host" is one of these is a key and a number (``retry:3``), or a
# source position (``Pool.java:456``), never an address
_NOT_HOSTS = frozenset(
    {
        "at", "attempt", "attempts", "code", "count", "debug", "err", "errno", "error",
        "exit", "fatal", "file", "gid", "http", "https", "id", "in", "info", "level",
        "line", "log", "n", "on", "panic", "pid", "port", "retries", "retry", "rc",
        "size", "status", "step", "tcp", "tid", "timeout", "to", "tries", "try", "udp",
        "uid", "unix", "user", "version", "warn", "warning",
    }
)  # fmt: skip
_SOURCE_FILE = re.compile(
    r"\.(?:java|kt|kts|scala|groovy|clj|js|mjs|cjs|ts|tsx|jsx|py|pyx|go|rb|rs|c|cc|cpp|cxx"
    r"|h|hpp|cs|php|ex|exs|erl|swift|lua|pl|pm|sh|dart)$",
    re.I,
)
_ADDRESS_CAPTURES = ("addr", "address", "endpoint", "upstream", "url", "dsn", "target", "peer")


def named_endpoints(line: str, captures: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The hosts and ports ``line`` (redacted) names, as ``Endpoint`` texts, in the order
    they appear, each once; from the pattern's ``captures`` where it has them."""
    found: Sequence[Endpoint] = _from_captures(captures or {})
    if not found:
        found = _from_line(line)
    out: list[str] = []
    for endpoint in found:
        text = str(endpoint)
        if text not in out:
            out.append(text)
    return tuple(out[:MAX_NAMED])


def _from_captures(captures: Mapping[str, str]) -> list[Endpoint]:
    values = {k.lower(): v for k, v in captures.items() if v and v != MASK}
    found: list[Endpoint] = []
    host = values.get("host") or values.get("hostname") or values.get("server")
    port = values.get("port", "")
    if host:
        endpoint = _endpoint(host)
        if endpoint is not None:
            if port.isdigit() and not endpoint.port and 0 < int(port) < 65536:
                endpoint = Endpoint(endpoint.host, int(port))
            found.append(endpoint)
    elif port.isdigit() and 0 < int(port) < 65536:
        found.append(Endpoint("", int(port)))
    for name in _ADDRESS_CAPTURES:
        value = values.get(name, "")
        if "://" in value:
            found.extend(endpoint for _, endpoint in _urls(value))
        elif value and (endpoint := _endpoint(value)) is not None:
            found.append(endpoint)
    return found


def _from_line(line: str) -> tuple[Endpoint, ...]:
    text = _DATETIME.sub(_blank, line)
    if _TIME_CLUE.search(text) is not None:
        text = _TIME.sub(_blank, text)
    return _read(text)


@lru_cache(maxsize=1024)
def _read(text: str) -> tuple[Endpoint, ...]:
    """What ``text`` (its times blanked) names. Cached: a flood of one error differs only
    in its times, and each form is looked for only where its clue is."""
    lower = text.lower()
    if ", client: " in text or ", upstream: " in text:  # an nginx error line
        upstream = _NGINX_UPSTREAM.search(text)
        if upstream is not None:
            return tuple(e for _, e in _urls(upstream["url"]))
        text = _NGINX.sub(_blank, text)
    if "->" in text:
        text = _LOCAL_SIDE.sub(lambda m: " " * (len(m.group()) - 2) + "->", text)
    if "lookup" in lower:
        text = _RESOLVER.sub(lambda m: m[1] + " " * (len(m.group()) - len(m[1])), text)
    hits: list[tuple[int, Endpoint | None, int]] = []  # position, endpoint, bare port
    if "://" in text:
        hits += [(start, url, 0) for start, url in _urls(text)]
        text = _URL.sub(_blank, text)  # what a URL holds is read once
    named = [regex for regex, clues in _NAMED_FORMS if any(clue in lower for clue in clues)]
    for regex in named:
        for match in regex.finditer(text):
            group = "bare" if match.groupdict().get("bare") else "value"
            found = _endpoint(match[group])
            if found is not None and _plausible(found):
                hits.append((match.start(group), found, 0))
    if "('" in text:
        for match in _TUPLE.finditer(text):
            pair = _endpoint(f"{match['host']}:{match['port']}")
            if pair is not None:
                hits.append((match.start(), pair, 0))
    taken = {start for start, _, _ in hits}
    if _PORT_CLUE.search(text) is not None:
        for regex in (_HOST_PORT, _NODE_V6):
            for match in regex.finditer(text):
                host = match.groupdict().get("host") or ""
                value = f"{host}:{match['port']}" if host else f"[{match['v6']}]:{match['port']}"
                address = _endpoint(value)
                if address is not None and _plausible(address) and match.start() not in taken:
                    hits.append((match.start(), address, 0))
    if "port" in lower:
        for match in _BARE_PORT.finditer(text):
            port = int(match["port"])
            if 0 < port < 65536:
                hits.append((match.start(), None, port))
    return tuple(_paired(sorted(hits, key=lambda hit: hit[0])))


def _paired(hits: list[tuple[int, Endpoint | None, int]]) -> list[Endpoint]:
    """A bare port joins the nearest host before it that has none; else it stands alone."""
    found: list[Endpoint] = []
    for _, endpoint, port in hits:
        if endpoint is not None:
            found.append(endpoint)
            continue
        for i in range(len(found) - 1, -1, -1):
            if found[i].host and not found[i].port:
                found[i] = Endpoint(found[i].host, port)
                break
        else:
            found.append(Endpoint("", port))
    return found


def _urls(text: str) -> Iterator[tuple[int, Endpoint]]:
    for match in _URL.finditer(text):
        for part in match["hosts"].split(","):
            endpoint = _endpoint(part)
            if endpoint is not None and endpoint.host:
                yield match.start(), endpoint


def _endpoint(text: str) -> Endpoint | None:
    """``host``, ``host:port`` or ``[v6]:port`` as an endpoint (quotes and a trailing
    full stop dropped), None when it is not one."""
    text = text.strip().strip("\"'`").rstrip(".")
    return Endpoint.parse(text)


def _plausible(endpoint: Endpoint) -> bool:
    """A host that can be an address: an IP, or a name with a letter that is not a key
    word, a source file or an all-digit token."""
    host = endpoint.host
    if not host or ":" in host:
        return True
    if _IPV4.fullmatch(host):
        return True
    if host.replace(".", "").isdigit():
        return False
    return host not in _NOT_HOSTS and _SOURCE_FILE.search(host) is None


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())
