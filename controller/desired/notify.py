"""The ``notify`` section: Apprise URLs checked before the controller starts.

A URL Apprise cannot send to is an error with its line, as a bad field is, rather than a
notification that silently never arrives. A URL often carries a token, so a problem
shows it only as ``detect.urlmask.masked_url`` does (scheme, a host that names a machine,
the rest masked).
"""

from __future__ import annotations

from controller.desired.errors import Problems
from controller.desired.schema import NotifyDeclaration
from controller.detect.urlmask import mask_apprise_log, masked_url
from controller.model import NotifyEvent, NotifySettings, Severity


def notify_settings(declared: NotifyDeclaration, problems: Problems) -> NotifySettings:
    """The section as settings; every URL Apprise does not know is a problem."""
    if declared.urls:
        mask_apprise_log()  # Apprise logs a URL it cannot parse, whole
        import apprise  # here, not at the top: only with URLs (a tenth of a second at start)
    for i, url in enumerate(declared.urls):
        if apprise.Apprise.instantiate(url) is None:
            problems.add(
                ("notify", "urls", i),
                f"not a URL Apprise can send to ({masked_url(url)}); "
                "see Apprise's list of services",
            )
    return NotifySettings(
        urls=tuple(declared.urls),
        events=frozenset(NotifyEvent(e) for e in declared.events),
        min_severity=Severity(declared.min_severity),
        group_seconds=declared.group_seconds,
        max_per_hour=declared.max_per_hour,
        timeout=declared.timeout_seconds,
    )
