"""A learned precursor as a pattern of the desired state: what ``controller patterns``
prints under "promote it".

The template's words are kept as they are (punctuation escaped), its placeholders become
the classes of what they stood for (``<n>`` digits, ``<*>`` a word drain3 saw vary ...),
its spaces runs of blanks: the syntax every pattern keeps to (``detect.library``). The
result is checked like any pattern, with the newest line as its example; when the
template does not match it (the line was cut), the longest literal run of the template
is the regex.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from controller.detect.library import ID_PATTERN, PatternError, PatternSpec, check_pattern
from controller.predict.precursors import Template

_PLACEHOLDERS = {
    "<n>": "[0-9]+",
    "<hex>": "(0x)?[0-9a-f]+",
    "<uuid>": "[0-9a-f-]+",
    "<ip>": "[0-9a-f.:]+",
    "<ts>": "[0-9TZ:.,+ -]+",
    "<time>": "[0-9:.,]+",
    "<*>": "[A-Za-z0-9_.:/@=,'-]+",
}
_TOKEN = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS))
_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _literal(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text).replace(" ", "[ \\t]+")


def _core(template: str) -> str:
    """The template without the placeholders it begins or ends with (a time stamp, an
    id): a pattern need not match those."""
    edge = "|".join(re.escape(p) for p in _PLACEHOLDERS)
    return re.sub(rf"^(?:(?:{edge})[ ]*)+|(?:[ ]*(?:{edge}))+$", "", template).strip()


def template_regex(template: str) -> str:
    """The template as a pattern's regex."""
    template = _core(template)
    parts, at = [], 0
    for found in _TOKEN.finditer(template):
        parts.append(_literal(template[at : found.start()]))
        parts.append(_PLACEHOLDERS[found.group(0)])
        at = found.end()
    parts.append(_literal(template[at:]))
    return "".join(parts).strip()


def pattern_id(template: Template) -> str:
    words = re.findall(r"[a-z][a-z0-9]+", _TOKEN.sub(" ", template.text.lower()))
    slug = "-".join([template.service.lower(), *words[:5]])
    slug = re.sub(r"[^a-z0-9-]+", "-", slug).strip("-")[:63].rstrip("-")
    return slug if re.match(ID_PATTERN, slug) else f"learned-{abs(hash(slug)) % 10**8}"


def promoted(template: Template, incidents: int) -> dict[str, Any]:
    """The pattern to add under ``detection.patterns``, checked as the loader checks it."""
    example = template.example
    spec: dict[str, Any] = {
        "id": pattern_id(template),
        "regex": template_regex(template.text),
        "category": "health",
        "severity": "high",
        "title": _title(template.text),
        "hint": (
            f"Came before {incidents} incident(s) of {template.service} (learned from its "
            "history by compose-controller): say here what it means and what to do."
        ),
        "examples": [example],
    }
    if template.pattern_id != "unclassified" or not _valid(spec):
        literal = max(_TOKEN.split(_core(template.text)), key=len).strip()
        spec["regex"] = _literal(literal) if literal else _literal(example[:60])
    return spec


def as_yaml(spec: dict[str, Any]) -> str:
    return str(yaml.safe_dump([spec], sort_keys=False, width=1000, allow_unicode=True))


def _title(text: str) -> str:
    title = f"Learned precursor: {_core(text)}"
    return title if len(title) <= 100 else title[:99] + "…"


def _valid(spec: dict[str, Any]) -> bool:
    try:
        check_pattern(PatternSpec.model_validate(spec))
    except (PatternError, ValueError):
        return False
    return True
