"""What a desired-state file can do wrong: problems, each one line ``FILE:LINE: field: problem``.

``DesiredStateError`` carries one or more problems, so ``controller check`` reports every
error of a file in one run, and the controller prints them one line each before it exits.
``Problems`` collects them while a file is checked, with the line of each field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

Loc = tuple[str | int, ...]


def _one_line(text: str) -> str:
    """Control characters (a newline in a key) escaped: a problem is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        field = f" {_one_line(self.field)}:" if self.field else ""
        return f"{where}:{field} {_one_line(self.message)}"


class DesiredStateError(Exception):
    """A desired-state file cannot be used; ``str()`` is one line per problem."""

    def __init__(
        self, source: Path | str, field: str, message: str, *, line: int | None = None
    ) -> None:
        self.problems: tuple[Problem, ...] = (Problem(str(source), field, message, line),)
        super().__init__(str(self.problems[0]))

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> DesiredStateError:
        found = tuple(problems)
        error = cls(found[0].source, found[0].field, found[0].message, line=found[0].line)
        error.problems = found
        error.args = ("\n".join(str(p) for p in found),)
        return error

    @property
    def source(self) -> str:
        return self.problems[0].source

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def message(self) -> str:
        return self.problems[0].message


class Problems:
    """Collects problems of one file; ``raise_any`` ends a stage that found some."""

    def __init__(self, source: Path, line_of: Callable[[Loc], int | None] = lambda loc: None):
        self.source = source
        self._line_of = line_of
        self.found: list[Problem] = []

    def add(self, loc: Loc, message: str) -> None:
        field = ".".join(str(part) for part in loc)
        problem = Problem(str(self.source), field, message, self._line_of(loc))
        if problem not in self.found:
            self.found.append(problem)

    def extend(self, error: DesiredStateError) -> None:
        for problem in error.problems:
            if problem not in self.found:
                self.found.append(problem)

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_any(self) -> None:
        """Raise every problem found so far, in the order of the file's lines."""
        if self.found:
            raise DesiredStateError.of(sorted(self.found, key=lambda p: p.line or 0))
