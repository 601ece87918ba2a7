"""Delivery through Apprise, one endpoint at a time, each with its own result.

Apprise is the library the peers of this project (docker-autoheal, LoggiFly) converged
on: one URL scheme per service (json://, ntfy://, mailto://, slack://, ...). Each URL is
its own Apprise object, so one failing endpoint is reported as that endpoint (by its
scheme and its URL with secrets hidden), and the others still receive the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import apprise

from controller.notify.message import Message


@dataclass(frozen=True, slots=True)
class Delivery:
    endpoint: str  # the URL with its secrets hidden (Apprise's privacy form)
    ok: bool


class Sender(Protocol):
    def send(self, message: Message) -> list[Delivery]: ...


class AppriseSender:
    def __init__(self, urls: Sequence[str], timeout: float) -> None:
        self._plugins = []
        for url in urls:
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:  # the desired state checked the URLs: not expected
                raise ValueError(f"not an Apprise URL (scheme {url.split(':', 1)[0]!r})")
            plugin.socket_connect_timeout = timeout
            plugin.socket_read_timeout = timeout
            self._plugins.append(plugin)

    def send(self, message: Message) -> list[Delivery]:
        results: list[Delivery] = []
        for plugin in self._plugins:
            try:
                ok = bool(
                    plugin.notify(
                        body=message.body,
                        title=message.title,
                        notify_type=apprise.NotifyType(message.kind),
                    )
                )
            except Exception:  # a plugin's own bug must not end the delivery thread
                ok = False
            endpoint = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
            results.append(Delivery(endpoint, ok))
        return results
