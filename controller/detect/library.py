"""The pattern library: the service packs shipped in the package, plus the user's changes.

The library is grouped by the software that prints the lines (``packs/<pack>.yaml``, one
file each: PostgreSQL, MySQL/MariaDB, Redis, nginx, Python, Node.js, the JVM, Go, the
shell and the dynamic loader ...), matched in the order of ``PACKS``: specific software
first, what every program prints (``common``) last. ``packs/README.md`` says what a pack
holds.

Every pattern is matched case-insensitively against single lines, by Hyperscan in buffers
of many lines and by Python ``re`` for captures, and exported to ``grep -E`` for the
benchmark. So a pattern keeps to the syntax all three share and never crosses a line break:

- literals, ``.``, bracket classes that are not negated (``[A-Za-z0-9_.-]``), ``\\b``,
  ``\\w``, escaped punctuation (``\\.``, ``\\(``), ``^`` and ``$``;
- groups ``( )``, ``(?: )`` and named captures ``(?P<name> )`` (plain groups for grep);
- ``* + ? {m,n}`` and alternation.

Not allowed: ``\\s`` ``\\S`` ``\\W`` ``\\D`` ``\\d`` (write ``[ \\t]`` or ``[0-9]``), negated
classes ``[^...]`` (they admit a newline in a buffer), lookarounds, back-references and
inline flags. ``check_pattern`` enforces this and names the pattern id in every error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.model import LINKED_CATEGORIES, Category, PatternDef, Severity

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when PyYAML has it

Remediation = Literal["restart", "recreate", "runbook", "none"]
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
# the descriptions of the fields a pattern and an override share (the JSON Schema's)
_CATEGORY = (
    "What kind of fault: connection, database, auth, config, import, filesystem, "
    "performance, health or code (a bug: reported, never restarted for)."
)
_SEVERITY = "low, medium, high or critical; a critical log issue blocks the CI gate."
_TITLE = "The issue's title."
_HINT = "What a person should look at."
_REMEDIATION = (
    "The step it suggests: restart, recreate, runbook (only a declared runbook) or none "
    "(reported only)."
)

_FORBIDDEN = [
    (
        re.compile(r"(?<!\\)(?:\\\\)*\\[sSWDd]"),
        "\\s \\S \\W \\D \\d are not portable or admit a newline; write [ \\t] or [0-9]",
    ),
    (
        re.compile(r"(?<!\\)(?:\\\\)*\[\^"),
        "negated classes [^...] admit a newline; list what is allowed instead",
    ),
    (
        re.compile(r"\(\?(?!:|P<)"),
        "only (?: ) and (?P<name> ) groups are allowed (no lookarounds or inline flags)",
    ),
    (re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]"), "back-references are not allowed"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\n"), "a pattern matches within one line: no \\n"),
    (re.compile(r"[*+}]\?"), "lazy quantifiers are not allowed"),
]


class PatternError(Exception):
    """A pattern cannot be used; ``str()`` is one line naming the pattern id."""


class PatternSpec(BaseModel):
    """One pattern of a pack (and of ``detection.patterns`` in a desired state)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=ID_PATTERN,
        description="Its id: lower case, digits and dashes (a runbook's when.pattern names it).",
    )
    regex: str = Field(
        min_length=2,
        description=(
            "Matched case-insensitively against one line; Python re, Hyperscan and grep -E "
            "syntax alike, never crossing a line (no \\s, no [^...]). Named captures may "
            "fill a runbook's argv."
        ),
    )
    category: Category = Field(description=_CATEGORY)
    severity: Severity = Field(description=_SEVERITY)
    title: str = Field(min_length=3, max_length=100, description=_TITLE)
    hint: str = Field(default="", description=_HINT)
    remediation: Remediation = Field(default="none", description=_REMEDIATION)
    generic: bool = Field(
        default=False,
        description="A catch-all: any specific pattern matching the same record wins over it.",
    )
    starting: bool = Field(
        default=False,
        description=(
            "What a client logs while the peer it reaches is still starting (connection "
            "refused, not accepting connections yet): logged while a dependency it is about "
            "(or its own service) starts, it is expected: low, never acted on, resolved once "
            "that is ready (docs/detection.md). Not for errors a start does not explain (a "
            "missing database, a bad password)."
        ),
    )
    client_gone: bool = Field(
        default=False,
        description=(
            "What a server logs when a client of it went away (connection reset by peer, "
            "broken pipe, a client's unexpected EOF): logged when a service that depends on "
            "it stopped, died or restarted, it is expected: low, never acted on, resolved "
            "once that is past (docs/detection.md). Not for what only a client logs "
            "(connection refused, a name that does not resolve)."
        ),
    )
    examples: list[str] = Field(
        default_factory=list, description="Lines it must match (checked at load)."
    )
    near_misses: list[str] = Field(
        default_factory=list, description="Lines it must not match (checked at load)."
    )

    def definition(self) -> PatternDef:
        return PatternDef(
            id=self.id,
            regex=self.regex,
            category=self.category,
            severity=self.severity,
            title=self.title,
            hint=self.hint,
            remediation=self.remediation,
            generic=self.generic,
            starting=self.starting,
            client_gone=self.client_gone,
        )


class PatternOverride(BaseModel):
    """What a desired state may change in a library pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity | None = Field(default=None, description=_SEVERITY)
    category: Category | None = Field(default=None, description=_CATEGORY)
    title: str | None = Field(default=None, min_length=3, max_length=100, description=_TITLE)
    hint: str | None = Field(default=None, description=_HINT)
    remediation: Remediation | None = Field(default=None, description=_REMEDIATION)


def compile_python(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


def check_pattern(spec: PatternSpec) -> re.Pattern[str]:
    """Validate one pattern and its examples; returns its compiled ``re`` form."""
    if spec.starting and spec.category not in LINKED_CATEGORIES:
        raise PatternError(
            f"pattern {spec.id}: starting: only a connection or database error is explained "
            f"by its peer starting, not a {spec.category} one"
        )
    if spec.client_gone and spec.category not in LINKED_CATEGORIES:
        raise PatternError(
            f"pattern {spec.id}: client_gone: only a connection or database error is explained "
            f"by a client going away, not a {spec.category} one"
        )
    for rule, why in _FORBIDDEN:
        if rule.search(spec.regex):
            raise PatternError(f"pattern {spec.id}: regex: {why}")
    try:
        with warnings.catch_warnings():
            # "possible nested set" and the like: the regex means something else than it
            # seems, or will in a later Python; an error, not a warning on stderr
            warnings.simplefilter("error")
            compiled = compile_python(spec.regex)
    except re.error as exc:
        raise PatternError(f"pattern {spec.id}: regex: invalid: {exc}") from None
    except Warning as exc:
        raise PatternError(f"pattern {spec.id}: regex: ambiguous: {exc}") from None
    if compiled.search(""):
        raise PatternError(f"pattern {spec.id}: regex: matches an empty line")
    for i, example in enumerate(spec.examples):
        if not compiled.search(example):
            raise PatternError(f"pattern {spec.id}: examples.{i}: does not match: {example!r}")
    for i, near in enumerate(spec.near_misses):
        if compiled.search(near):
            raise PatternError(f"pattern {spec.id}: near_misses.{i}: matches: {near!r}")
    return compiled


def to_ere(regex: str) -> str:
    """The same pattern in POSIX ERE for ``grep -E`` (groups become plain groups)."""
    return re.sub(r"\(\?(?::|P<[A-Za-z_][A-Za-z0-9_]*>)", "(", regex)


def parse_specs(raw: Any, where: str) -> list[PatternSpec]:
    """Validate a list of pattern mappings; errors name the pattern id when there is one."""
    if not isinstance(raw, list):
        raise PatternError(f"{where}: expected a list of patterns")
    specs: list[PatternSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        label = item.get("id", f"#{index}") if isinstance(item, dict) else f"#{index}"
        try:
            spec = PatternSpec.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "pattern"
            raise PatternError(f"pattern {label}: {loc}: {first['msg']}") from None
        if spec.id in seen:
            raise PatternError(f"pattern {spec.id}: id: defined twice")
        seen.add(spec.id)
        check_pattern(spec)
        specs.append(spec)
    return specs


PACKS = (
    "nginx",
    "mysql",
    "mongodb",
    "postgresql",
    "redis",
    "sql",
    "node",  # before python: "SyntaxError: ... JSON" is node's JSON, not python's syntax
    "python",
    "jvm",
    "go",
    "ruby",
    "shell",
    "common",
)


def library_packs() -> dict[str, list[PatternSpec]]:
    """The shipped packs by the software that prints their lines, in matching order,
    validated (examples and near-misses included); an id is in one pack only."""
    packs: dict[str, list[PatternSpec]] = {}
    seen: set[str] = set()
    for pack in PACKS:
        where = f"packs/{pack}.yaml"
        text = resources.files("controller.detect").joinpath(where).read_text("utf-8")
        raw = yaml.load(text, Loader=SafeLoader)  # a safe loader (C when available)
        if not isinstance(raw, dict) or not isinstance(raw.get("software"), str):
            raise PatternError(f"{where}: expected software: and patterns:")
        specs = parse_specs(raw.get("patterns"), where)
        for spec in specs:
            if spec.id in seen:
                raise PatternError(f"pattern {spec.id}: id: in two packs")
            seen.add(spec.id)
        packs[raw["software"]] = specs
    return packs


def library_specs() -> list[PatternSpec]:
    """The shipped library, every pack in matching order."""
    return [spec for specs in library_packs().values() for spec in specs]


def build_patterns(
    added: Sequence[PatternSpec] = (),
    overrides: Mapping[str, PatternOverride] | None = None,
    library: Sequence[PatternSpec] | None = None,
) -> tuple[PatternDef, ...]:
    """The library with the user's overrides applied and the user's patterns added.

    The desired-state loader refuses a user pattern with a library pattern's id (a library
    pattern is changed under ``detection.overrides``), so nothing is replaced silently.
    """
    base = {s.id: s for s in (library if library is not None else library_specs())}
    for pattern_id, change in (overrides or {}).items():
        if pattern_id not in base:
            raise PatternError(f"pattern {pattern_id}: overrides: no such pattern in the library")
        updates = change.model_dump(exclude_none=True)
        base[pattern_id] = base[pattern_id].model_copy(update=updates)
    for spec in added:
        base[spec.id] = spec
    return tuple(s.definition() for s in base.values())
