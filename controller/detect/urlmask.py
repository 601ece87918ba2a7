"""The one way an Apprise URL (or any endpoint URL) is shown: with every secret masked.

A notification URL is mostly secret: Apprise puts tokens in the user, the password, the
host (``slack://TokenA/TokenB/TokenC``, ``tgram://BOT:TOKEN/chat``), the path
(``gotify://host/TOKEN``, ``https://hooks.slack.com/services/T/B/X``) and the query
(``json://host/?+X-Auth=secret&-field=x&:key=y``). Apprise's own "privacy" form keeps the
header and payload parameters and the first and last character of tokens, so it is not
used. ``masked_url`` keeps what tells endpoints apart and nothing a secret could hide in:

- the scheme;
- the host and port, only when the host is a DNS name with a dot, ``localhost`` or an IP
  address and the port is a number (else the whole authority is ``***``);
- the user and password: ``***`` each;
- every path segment: ``***`` (the slashes stay, so the shape shows);
- every query parameter's value, except Apprise's display options (``format=``,
  ``overflow=`` ...): ``***`` (``+``, ``-`` and ``:`` parameters always);
- a fragment (``#channel``): ``#***``.

It never raises: text that is not a URL at all is shown as ``***``. Apprise logs URLs
itself (one it cannot parse at ERROR, the one it loaded and the one it posts to at DEBUG,
and the payload it sends): ``mask_apprise_log`` puts a filter on its logger that shows
them through ``masked_url`` too, and leaves the payload out.
"""

from __future__ import annotations

import ipaddress
import logging
import re

MASK = "***"

_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$"
)
# parameters of Apprise's that choose how a message looks or is sent, never a secret
_DISPLAY = frozenset(
    {
        "format", "overflow", "verify", "rto", "cto", "emojis", "tz", "priority", "mode",
        "method", "image", "avatar", "footer", "batch", "tts", "timestamp", "blocks",
        "retry", "wait", "optional", "store", "discovery", "include_image", "preview",
        "silent", "content", "detect", "mdv", "album", "fields", "footer_logo", "thread",
    }
)  # fmt: skip


def masked_url(url: str) -> str:
    """``url`` as it may be logged or shown: see the module's docstring."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return MASK
    rest = url[scheme.end() :].strip()
    rest, _, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    shown = f"{scheme.group(1).lower()}://{_authority(authority)}"
    if slash:
        shown += "/" + "/".join(MASK if segment else "" for segment in path.split("/"))
    if question:
        shown += "?" + "&".join(_parameter(pair) for pair in query.split("&") if pair)
    if fragment:
        shown += "#" + MASK
    return shown


def _authority(authority: str) -> str:
    userinfo, at, hostport = authority.rpartition("@")
    user = ""
    if at:
        user = ":".join(MASK for _ in userinfo.split(":", 1)) + "@"
    host, port = _split_port(hostport)
    if not _public_part(host) or (port and not (port.isdigit() and len(port) <= 5)):
        return user + MASK if hostport else user
    return user + host + (f":{port}" if port else "")


def _split_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [IPv6]:port
        inside, _, after = hostport[1:].partition("]")
        return f"[{inside}]", after.removeprefix(":")
    host, _, port = hostport.partition(":")
    return host, port


def _public_part(host: str) -> bool:
    """A host that names a machine, not a token: a DNS name, localhost, an IP address."""
    if host.lower() == "localhost" or _HOSTNAME.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _parameter(pair: str) -> str:
    key, equals, _value = pair.partition("=")
    if not equals:
        return MASK  # a bare word in a query may be a token
    if key.lower() in _DISPLAY:
        return pair
    return f"{key}={MASK}"


_ANY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_URL_PATH = re.compile(r"(?<=url: )/\S+")  # urllib3: "Max retries exceeded with url: /p"


class MaskedUrls(logging.Filter):
    """Log records with every URL in them shown by ``masked_url``, and no payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = original = record.getMessage()
        head, payload, _ = text.partition(" Payload: ")
        if payload:  # the body sent, with the URL's payload parameters (":key=value")
            text = f"{head} Payload: (not shown: it holds the URL's payload parameters)"
        masked = _URL_PATH.sub("/***", _ANY_URL.sub(lambda m: masked_url(m.group()), text))
        if masked != original:
            record.msg, record.args = masked, None
        return True


_FILTER = MaskedUrls()


def mask_apprise_log() -> None:
    """Put ``MaskedUrls`` on Apprise's logger (once): before any Apprise URL is parsed."""
    apprise_log = logging.getLogger("apprise")
    if _FILTER not in apprise_log.filters:
        apprise_log.addFilter(_FILTER)
