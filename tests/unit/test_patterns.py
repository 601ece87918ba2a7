"""The pattern library: every example matches and every near-miss does not, through all
three engines that use the patterns (Python re, Hyperscan, and grep -E -i for the
benchmark); the library's breadth; and the syntax rules."""

import re
import shutil
import subprocess

import pytest

from controller.detect.library import (
    PatternError,
    PatternOverride,
    PatternSpec,
    build_patterns,
    check_pattern,
    library_specs,
    parse_specs,
    to_ere,
)
from controller.detect.matcher import Matcher
from controller.model import Category, Severity

SPECS = library_specs()
IDS = [s.id for s in SPECS]


def test_the_library_has_45_patterns_over_all_categories_and_severities():
    assert len(SPECS) >= 45
    # every category but "predicted", which no log line is: forecasts and precursors
    assert {s.category for s in SPECS} == set(Category) - {Category.PREDICTED}
    assert {s.severity for s in SPECS} == set(Severity)


def test_every_pattern_has_an_example_a_near_miss_a_title_and_a_hint():
    for spec in SPECS:
        assert spec.examples and spec.near_misses and spec.hint, spec.id


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_hyperscan_agrees_with_re_on_examples_and_near_misses(spec: PatternSpec):
    matcher = Matcher(build_patterns(library=[spec]))
    assert matcher.engine == "hyperscan", f"{spec.id} must compile in Hyperscan"
    lines = [*spec.examples, *spec.near_misses]
    hit_lines = {h.line for h in matcher.scan_lines(lines)}
    assert hit_lines == set(range(len(spec.examples)))


@pytest.mark.skipif(shutil.which("grep") is None, reason="no grep")
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_grep_agrees_with_re_on_examples_and_near_misses(spec: PatternSpec):
    lines = [*spec.examples, *spec.near_misses]
    done = subprocess.run(
        ["grep", "-E", "-i", "-n", "-e", to_ere(spec.regex)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C"},
    )
    assert done.returncode in (0, 1), done.stderr
    matched = {int(row.split(":", 1)[0]) - 1 for row in done.stdout.splitlines()}
    assert matched == set(range(len(spec.examples)))


@pytest.mark.parametrize(
    ("regex", "why"),
    [
        (r"error\s+code", "not portable"),
        (r"user [^ ]+ failed", "negated"),
        (r"(?=foo)bar", "only (?: )"),
        (r"(?i)bar", "only (?: )"),
        (r"(a)\1", "back-references"),
        (r"a.*?b", "lazy"),
        (r"x|", "matches an empty line"),
        (r"bad(", "invalid"),
    ],
)
def test_a_pattern_outside_the_shared_syntax_is_refused_naming_its_id(regex, why):
    spec = PatternSpec(id="mine", regex=regex, category="health", severity="low", title="Mine")
    with pytest.raises(PatternError, match=rf"^pattern mine: regex: .*{re.escape(why)}"):
        check_pattern(spec)


def test_examples_and_near_misses_of_a_user_pattern_are_checked():
    with pytest.raises(PatternError, match=r"pattern mine: examples\.0: does not match"):
        parse_specs(
            [
                {
                    "id": "mine",
                    "regex": "boom",
                    "category": "health",
                    "severity": "low",
                    "title": "Boom",
                    "examples": ["bang"],
                }
            ],
            "x",
        )
    with pytest.raises(PatternError, match=r"pattern mine: near_misses\.0: matches"):
        parse_specs(
            [
                {
                    "id": "mine",
                    "regex": "boom",
                    "category": "health",
                    "severity": "low",
                    "title": "Boom",
                    "near_misses": ["BOOM"],
                }
            ],
            "x",
        )


def test_an_unknown_field_names_the_pattern():
    with pytest.raises(PatternError, match=r"^pattern mine: severty: Extra inputs"):
        parse_specs(
            [
                {
                    "id": "mine",
                    "regex": "boom",
                    "category": "health",
                    "severity": "low",
                    "severty": "high",
                    "title": "Boom",
                }
            ],
            "x",
        )


def test_overrides_change_a_library_pattern_and_user_patterns_are_added():
    patterns = build_patterns(
        added=parse_specs(
            [
                {
                    "id": "mine",
                    "regex": "boom",
                    "category": "health",
                    "severity": "low",
                    "title": "Boom",
                }
            ],
            "x",
        ),
        overrides={"conn-refused": PatternOverride(severity=Severity.LOW)},
    )
    by_id = {p.id: p for p in patterns}
    assert by_id["conn-refused"].severity is Severity.LOW
    assert by_id["mine"].title == "Boom"
    with pytest.raises(PatternError, match="pattern nope: overrides: no such pattern"):
        build_patterns(overrides={"nope": PatternOverride(severity=Severity.LOW)})


def test_ere_export_keeps_groups_but_drops_python_group_syntax():
    assert to_ere(r'database "(?P<db>[a-z]+)" (?:does not|doesn.t) exist') == (
        r'database "([a-z]+)" (does not|doesn.t) exist'
    )


def test_a_pattern_hyperscan_refuses_falls_back_to_re_and_still_matches():
    heavy = {
        "id": "heavy",
        "regex": "(ab|cd){5000}",
        "category": "health",
        "severity": "low",
        "title": "Too large for Hyperscan",
    }
    light = {
        "id": "light",
        "regex": "boom",
        "category": "health",
        "severity": "low",
        "title": "Boom",
    }
    matcher = Matcher(build_patterns(added=parse_specs([heavy, light], "x"), library=[]))
    assert matcher.engine == "hyperscan+re"
    hits = matcher.scan_lines(["nothing", "ab" * 5000, "a boom"])
    assert [(h.line, matcher.patterns[h.pattern].id) for h in hits] == [(1, "heavy"), (2, "light")]
