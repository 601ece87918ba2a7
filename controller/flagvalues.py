"""What a flag (or its ``CONTROLLER_*`` variable) may hold: every number with bounds a
person can reason about, never an empty string, and a bad value in one line.

Why: ``1e308`` seconds overflowed APScheduler at start, ``1e300`` made every pass fail or
a shutdown end in a traceback, an empty metrics host listened on every interface, and an
empty state directory silently meant ``.`` (issue 20). Each type below refuses with a
message that says the range, so ``controller --help``, the error and the docs agree.

``OneLineParser`` ends a bad command line with one line on stderr and exit 2, without
argparse's usage block.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

MAX_HOST_CHARS = 253  # a DNS name's limit
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,254}$")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``PROG: error: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        line = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {line} (see {self.prog} --help)\n")


def _given(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def seconds(low: float, high: float, *, low_included: bool = True) -> Callable[[str], float]:
    """A number of seconds in [low, high] (or (low, high] without ``low_included``)."""
    bounds = (
        f"from {low:g} to {high:g} seconds"
        if low_included
        else f"more than {low:g} and at most {high:g} seconds"
    )

    def convert(text: str) -> float:
        _given(text)
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        fits = low <= value if low_included else low < value
        if not (math.isfinite(value) and fits and value <= high):
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value

    convert.__name__ = "seconds"
    return convert


def integer(low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def convert(text: str) -> int:
        _given(text)
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text!r}")
        return value

    convert.__name__ = "integer"
    return convert


def text(value: str) -> str:
    """Any text but the empty string."""
    return _given(value)


def path(value: str) -> Path:
    """A path, never empty (an empty one would silently mean the current directory)."""
    return Path(_given(value))


def env_name(value: str) -> str:
    """An environment's name: it names ``DIR/NAME.yaml`` and ``docker_issues_NAME.json``,
    so letters, digits, ``_ . -``, at most 64 characters, no path."""
    if not _ENV_NAME.match(_given(value)):
        raise argparse.ArgumentTypeError(
            f"must be 1 to 64 letters, digits, '_', '.' or '-' (not a path), got {value!r}"
        )
    return value


def project_name(value: str) -> str:
    """A compose project's name, as Compose allows it: lower-case letters, digits, ``-``
    and ``_``, starting with a letter or digit."""
    if not _PROJECT_NAME.match(_given(value)):
        raise argparse.ArgumentTypeError(
            "must be lower-case letters, digits, '-' or '_', starting with a letter or "
            f"digit, got {value!r}"
        )
    return value


_ENGINE_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")


def node_engines(value: str) -> dict[str, str]:
    """``NODE=DOCKER_HOST[,NODE=DOCKER_HOST ...]``: a swarm node's engine by its host name
    (``docker node ls``), each address as ``DOCKER_HOST`` says one."""
    found: dict[str, str] = {}
    for item in _given(value).split(","):
        node, sep, url = item.strip().partition("=")
        if not sep or not node or not url.startswith(_ENGINE_SCHEMES):
            raise argparse.ArgumentTypeError(
                f"expected NODE=unix://... or NODE=tcp://... (comma-separated), got {item!r}"
            )
        found[node] = url
    return found


def host(value: str) -> str:
    """An address or a DNS name: an IP address (IPv6 with or without brackets), or at
    most 253 characters of labels of letters, digits and ``-`` (at most 63 each)."""
    _given(value)
    if is_ip(value):
        return value.strip("[]")
    labels = value.rstrip(".").split(".")
    if len(value) > MAX_HOST_CHARS or not all(_LABEL.match(label) for label in labels):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise argparse.ArgumentTypeError(
            f"not an IP address or a host name (at most {MAX_HOST_CHARS} characters, "
            f"labels of letters, digits and '-'): {shown!r}"
        )
    return value


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True
