"""What makes two log errors the same issue.

A finding's fingerprint is its service, its pattern, and the text the pattern matched with
everything that varies between occurrences of one fault replaced by a placeholder: UUIDs,
timestamps, IP addresses and ports, hex ids, numbers. So ``database "app" does not exist``
is one issue however often and wherever it is logged, and ``database "billing" does not
exist`` is another.
"""

from __future__ import annotations

import hashlib
import re

_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<ts>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(r"\[?\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}\]?(?::\d{1,5})?", re.I), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
]


def mask_variables(text: str) -> str:
    """``text`` with ids, times, addresses and numbers replaced by placeholders."""
    for rule, placeholder in _RULES:
        text = rule.sub(placeholder, text)
    return text


def normalize(text: str) -> str:
    """The comparable form of an error text: variables masked, lower-cased, spaces squeezed."""
    return " ".join(mask_variables(text).lower().split())


def fingerprint(service: str, pattern_id: str, matched: str) -> str:
    digest = hashlib.sha256(normalize(matched).encode()).hexdigest()[:10]
    return f"log:{service}:{pattern_id}:{digest}"
