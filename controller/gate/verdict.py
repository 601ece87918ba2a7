"""What the gate concludes, as the process's exit code (its own module: the CLI maps exit
codes before it imports the rest)."""

from __future__ import annotations

from enum import IntEnum


class Verdict(IntEnum):
    """What the gate concluded; the value is the process's exit code."""

    CONVERGED = 0
    NOT_CONVERGED = 1
    BAD_INPUT = 2
    ENGINE_UNREACHABLE = 3
    TIMED_OUT = 4
    ROLLED_BACK = 5
