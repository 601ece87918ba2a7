"""The service packs: the library grouped by the software that prints the lines, and every
built-in exception that ends a Python process given a category."""

from __future__ import annotations

import builtins

import pytest

from controller.detect.detector import Detector
from controller.detect.library import PACKS, build_patterns, library_packs
from controller.model import DetectionSettings, LogLine

SOFTWARE = {
    "PostgreSQL",
    "MySQL and MariaDB",
    "Redis",
    "nginx",
    "Python",
    "Node.js",
    "The JVM",
    "Go",
    "The shell and the dynamic loader",
}


def ending_exceptions() -> list[str]:
    """Every built-in exception class a process can die of with a traceback: all but the
    warnings (reported, not raised) and SystemExit (it prints its message or nothing)."""
    return sorted(
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and not issubclass(value, Warning)
        and value is not SystemExit
    )


def test_there_is_a_pack_for_each_software_the_issue_names_with_examples():
    packs = library_packs()
    assert len(packs) == len(PACKS)
    assert set(packs) >= SOFTWARE
    for software, specs in packs.items():
        assert specs, software
        assert all(spec.examples and spec.near_misses for spec in specs), software


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionSettings(patterns=build_patterns(), discovery=False))


@pytest.mark.parametrize("name", ending_exceptions())
def test_every_built_in_exception_that_ends_a_process_has_a_category(name, detector):
    message = "" if name in ("StopIteration", "GeneratorExit", "KeyboardInterrupt") else ": x"
    traceback = [
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 3, in <module>',
        "    main()",
        f"{name}{message}",
    ]
    lines = [
        LogLine("app", f"app-{name}", 1_800_000_000_000_000_000 + i, t)
        for i, t in enumerate(traceback)
    ]
    (finding,) = detector.feed(lines, 0.0) + detector.forget([f"app-{name}"])
    generic = {p.id for p in detector.settings.patterns if p.generic}
    assert finding.pattern_id not in generic, (name, finding.pattern_id)  # a category of its own
