"""A robust straight line through points, and whether they rise at all.

Theil-Sen: the slope is the median of the slopes between every pair of points, the
intercept the median of what is left; half the points can be outliers before the line
moves. The Mann-Kendall statistic counts the pairs that rise against those that fall:
its normal score above ``RISING_Z`` (one-sided 1 %) says the points rise, not by chance.
Points are few (an envelope of at most ``envelope.MAX_POINTS``), so the pairs are cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

RISING_Z = 2.33  # one-sided 1 % of the normal distribution

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Line:
    slope: float  # units per second
    intercept: float  # the value at time 0 of the points' clock
    tau: float  # Kendall's tau: from -1 (always falling) to 1 (always rising)
    z: float  # the Mann-Kendall normal score (with continuity correction)
    spread: float  # the median absolute distance of the points from the line

    def at(self, t: float) -> float:
        return self.intercept + self.slope * t

    @property
    def rising(self) -> bool:
        """A rise that chance would give less than once in a hundred."""
        return self.slope > 0 and self.z > RISING_Z


def theil_sen(points: Sequence[Point]) -> Line:
    """The line through ``points`` (at least two, with distinct times)."""
    if len(points) < 2:
        raise ValueError("a line needs two points")
    slopes: list[float] = []
    concordant = discordant = 0
    for i, (x1, y1) in enumerate(points):
        for x2, y2 in points[i + 1 :]:
            if x2 == x1:
                continue
            slopes.append((y2 - y1) / (x2 - x1))
            rise = (y2 - y1) * (x2 - x1)
            if rise > 0:
                concordant += 1
            elif rise < 0:
                discordant += 1
    if not slopes:
        raise ValueError("a line needs two distinct times")
    slope = median(slopes)
    intercept = median(y - slope * x for x, y in points)
    pairs = len(slopes)
    s = concordant - discordant
    n = len(points)
    variance = n * (n - 1) * (2 * n + 5) / 18.0
    z = (s - math.copysign(1, s)) / math.sqrt(variance) if s else 0.0
    spread = median(abs(y - (intercept + slope * x)) for x, y in points)
    return Line(slope, intercept, s / pairs, z, spread)
