"""Notification URLs from outside the desired state: a variable and Apprise's own files.

- ``CONTROLLER_NOTIFY_URLS``: Apprise URLs separated by blanks, or by commas where a comma
  starts a new URL (``json://a/x, ntfy://b/t``; a comma inside a URL, as in
  ``mailto://...?to=a@x,b@y``, stays). Like a flag's variable it wins over every file.
- Apprise's configuration files, where the ``apprise`` command looks for them
  (``~/.apprise.yml``, ``~/.config/apprise/apprise.yml``, ``/etc/apprise.yml`` ... or the
  paths in ``APPRISE_CONFIG_PATH``, separated by ``;`` or newlines): read only without a
  desired-state file, and only when nothing else names a URL.

A URL Apprise cannot send to is a problem naming the variable (and the item), a file that
yields no URL one naming the file; a URL is shown only as ``masked_url`` shows it.
Called by ``desired`` and ``desired.zeroconfig``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from controller.desired.errors import DesiredStateError, Problem
from controller.detect.urlmask import mask_apprise_log, masked_url

NOTIFY_VARIABLE = "CONTROLLER_NOTIFY_URLS"
APPRISE_PATHS_VARIABLE = "APPRISE_CONFIG_PATH"
_SPLIT = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
APPRISE_CONFIG_PATHS: tuple[str, ...] = tuple(
    f"{base}{suffix}"
    for base in (
        "~/.apprise",
        "~/.config/apprise",
        "~/.apprise/apprise",
        "~/.config/apprise/apprise",
        "/etc/apprise",
        "/etc/apprise/apprise",
    )
    for suffix in ("", ".conf", ".yml", ".yaml")
)


def urls_from_environment(environ: Mapping[str, str]) -> list[str] | None:
    """The URLs of ``CONTROLLER_NOTIFY_URLS``; ``None`` when it is unset or blank."""
    text = environ.get(NOTIFY_VARIABLE, "").strip()
    if not text:
        return None
    urls = [part.strip(" ,") for part in _SPLIT.split(text) if part.strip(" ,")]
    import apprise  # here, not at the top: only with URLs (a tenth of a second at start)

    mask_apprise_log()  # Apprise logs a URL it cannot parse, whole
    problems = [
        Problem(
            NOTIFY_VARIABLE,
            f"item {i + 1}",
            f"not a URL Apprise can send to ({masked_url(url)}); see Apprise's list of services",
        )
        for i, url in enumerate(urls)
        if apprise.Apprise.instantiate(url) is None
    ]
    if problems:
        raise DesiredStateError.of(problems)
    return urls


def apprise_config_paths(environ: Mapping[str, str], home: Path | None = None) -> list[Path]:
    """Where Apprise's configuration files are looked for (``APPRISE_CONFIG_PATH`` when set)."""
    if spec := environ.get(APPRISE_PATHS_VARIABLE, "").strip():
        return [Path(p.strip()).expanduser() for p in re.split(r"[\r\n;]+", spec) if p.strip()]
    user = home if home is not None else Path.home()
    return [
        user / p[2:] if p.startswith("~/") else Path(p)
        for p in APPRISE_CONFIG_PATHS  # order: the user's first, then the machine's
    ]


def urls_from_apprise_files(paths: Sequence[Path]) -> tuple[list[str], list[Path]]:
    """The URLs of every Apprise configuration file of ``paths`` that exists (text or
    YAML, as Apprise reads them), and the files read; ``DesiredStateError`` for a file
    that yields none."""
    urls: list[str] = []
    read: list[Path] = []
    mask_apprise_log()
    for path in paths:
        if not path.is_file():
            continue
        import apprise  # here, not at the top: only with a file (a tenth of a second)

        config = apprise.AppriseConfig()
        services = config.services() if config.add(str(path)) else []
        if not services:
            raise DesiredStateError(path, "", "no URL Apprise can send to in this file")
        urls.extend(service.url(privacy=False) for service in services)  # type: ignore[no-untyped-call]
        read.append(path)
    return urls, read
