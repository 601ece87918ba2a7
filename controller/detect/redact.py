"""Secrets masked before a line is stored, reported, logged or exported.

Applied to every piece of log text the controller keeps (evidence, samples, templates),
so the JSON file, the Markdown report and the controller's own log only ever see the
masked form. Masks keep the key and the shape (``password=***``) so a reader still sees
what kind of value was there.
"""

from __future__ import annotations

import re

MASK = "***"

_KEYS = (
    r"password|passwd|pwd|secret|client[_-]?secret|token|access[_-]?token|"
    r"refresh[_-]?token|id[_-]?token|auth[_-]?token|api[_-]?key|apikey|access[_-]?key|"
    r"secret[_-]?key|private[_-]?key|session[_-]?id|credentials?|authorization"
)
_RULES: list[tuple[re.Pattern[str], str]] = [
    # -----BEGIN ... PRIVATE KEY----- blocks (within one record)
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
        ),
        "-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----",
    ),
    # scheme://user:password@host
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.I), r"\1" + MASK + "@"),
    # Authorization: Bearer xxx / Basic xxx / Token xxx
    (re.compile(r"\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1\2" + MASK),
    # key=value, key: value, "key": "value", key='value'
    (
        re.compile(
            rf"\b({_KEYS})([\"']?\s*[=:]\s*[\"']?)(?!{re.escape(MASK)})[^\s\"',;&}})\]]+", re.I
        ),
        r"\1\2" + MASK,
    ),
    # JSON Web Tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    # well-known token formats: AWS, GitHub, GitLab, Slack, Google, Stripe
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), MASK),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK),
    (re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b"), MASK),
]


# Something every rule's match contains: text with none of these holds no secret, and two
# searches cost much less than every rule's ``sub``. For ASCII text, matching ignoring case
# is matching the lowered text, so the case-blind clues are searched there (a faster search
# than one ignoring case); other text goes through every rule.
_CLUES = re.compile(
    r"-----BEGIN |eyJ|AKIA|ASIA|gh[pousr]_|glpat-|xox[abposr]-|AIza|[rs]k_(?:live|test)_"
)
_LOWER_CLUES = re.compile(r"://|bearer|basic|token|digest|" + _KEYS)


def redact(text: str) -> str:
    if text.isascii() and _CLUES.search(text) is None and _LOWER_CLUES.search(text.lower()) is None:
        return text
    for rule, replacement in _RULES:
        text = rule.sub(replacement, text)
    return text
