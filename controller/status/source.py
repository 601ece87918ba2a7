"""Where ``controller status`` reads the issues document: a running controller's
``/status`` or the JSON file it writes (the same document either way)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class StatusUnavailable(Exception):
    """No document could be read; the message is one line saying where and why."""


def from_url(url: str, timeout: float = 5.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return _document(reply.read(), url)
    except urllib.error.HTTPError as exc:
        raise StatusUnavailable(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(f"{url}: no controller answers ({reason})") from exc
    except ValueError as exc:  # a host the URL library refuses (idna: a label too long ...)
        raise StatusUnavailable(f"{_short(url)}: not a usable address ({exc})") from exc


def readiness(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether ``url`` (a controller's ``/readyz``) says ready, and one line saying so."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status == 200, f"{url}: ready"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: not ready (HTTP {exc.code})"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: no controller answers ({getattr(exc, 'reason', exc)})"
    except ValueError as exc:
        return False, f"{_short(url)}: not a usable address ({exc})"


def from_file(path: Path) -> dict[str, Any]:
    try:
        return _document(path.read_bytes(), str(path))
    except OSError as exc:
        raise StatusUnavailable(f"{path}: {exc.strerror or exc}") from exc


def _document(raw: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise StatusUnavailable(f"{where}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list):
        raise StatusUnavailable(f"{where}: not an issues document (no 'services' list)")
    return doc


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
