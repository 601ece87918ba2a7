"""Delivery through Apprise, one endpoint at a time, each with its own result.

Apprise is the library the peers of this project (docker-autoheal, LoggiFly) converged
on: one URL scheme per service (json://, ntfy://, mailto://, slack://, ...). Each URL is
its own Apprise object, so one failing endpoint is reported as that endpoint (its place
in ``notify.urls`` and the URL as ``detect.urlmask.masked_url`` shows it: Apprise's own
"privacy" form keeps header and payload parameters), and the others still receive the
message. Apprise's own log lines show every URL in them the same way (``mask_apprise_log``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.detect.urlmask import mask_apprise_log, masked_url
from controller.notify.message import Message


@dataclass(frozen=True, slots=True)
class Delivery:
    endpoint: str  # "notify.urls[N] URL", the URL with every secret masked (masked_url)
    ok: bool


def endpoint_name(index: int, url: str) -> str:
    """How a log line names the ``index``th URL of ``notify.urls``."""
    return f"notify.urls[{index}] {masked_url(url)}"


class Sender(Protocol):
    def send(self, message: Message) -> list[Delivery]: ...


class AppriseSender:
    def __init__(self, urls: Sequence[str], timeout: float) -> None:
        import apprise  # here, not at the top: only with URLs (a tenth of a second at start)

        mask_apprise_log()
        self._notify_type = apprise.NotifyType
        self._plugins = []
        self._names = [endpoint_name(i, url) for i, url in enumerate(urls)]
        for url in urls:
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:  # the desired state checked the URLs: not expected
                raise ValueError(f"not an Apprise URL (scheme {url.split(':', 1)[0]!r})")
            plugin.socket_connect_timeout = timeout
            plugin.socket_read_timeout = timeout
            self._plugins.append(plugin)

    def send(self, message: Message) -> list[Delivery]:
        results: list[Delivery] = []
        for plugin, name in zip(self._plugins, self._names, strict=True):
            try:
                ok = bool(
                    plugin.notify(
                        body=message.body,
                        title=message.title,
                        notify_type=self._notify_type(message.kind),
                    )
                )
            except Exception:  # a plugin's own bug must not end the delivery thread
                ok = False
            results.append(Delivery(name, ok))
        return results
