"""What of a resource's samples a trend line is fitted to: an upper envelope.

A leak raises the floor and the ceiling alike; a garbage collector's saw-tooth climbs
and drops back, again and again, to the same peak. So the samples are cut into cycles
at their drops (a fall of ``DROP_SHARE`` of the cycle's peak, and at least
``DROP_FLOOR`` of the limit), and:

- no drop yet: the line goes through the maxima of up to ``MAX_POINTS`` equal slices of
  the samples (a monotone climb, or noise about a level);
- drops: through each cycle's peak (the current cycle's only once it tops the earlier
  ones), so a steady saw-tooth is flat and a leak under a collector still rises; with
  fewer than ``MIN_CYCLE_PEAKS`` peaks there is no envelope yet. Sampling a saw-tooth
  catches each peak up to one sampling step below the true one, and as the phase of the
  samples drifts against the cycle (aliasing) the sampled peaks climb for a while: so a
  rise of the peaks counts only beyond ``ALIASING_STEPS`` such steps (``Envelope.noise``:
  the largest climb between two samples within a cycle);
- a current cycle already twice as long as the longest before it (the saw-tooth stopped
  dropping): through the maxima of that cycle alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.predict.fit import Point

MAX_POINTS = 30  # the most points a line is fitted to (Theil-Sen's pairs: 435)
DROP_SHARE = 0.10  # a fall of a tenth of the cycle's peak ...
DROP_FLOOR = 0.02  # ... and of at least 2 % of the limit ends a cycle
MIN_CYCLE_PEAKS = 3
ALIASING_STEPS = 1.5


@dataclass(frozen=True, slots=True)
class Envelope:
    points: tuple[Point, ...]
    method: str  # how the points were chosen, for a person
    noise: float = 0.0  # a rise of the points up to this much is what sampling makes


@dataclass(frozen=True, slots=True)
class _Cycle:
    samples: tuple[Point, ...]

    @property
    def peak(self) -> Point:
        return max(self.samples, key=lambda s: s[1])

    @property
    def length(self) -> float:
        return self.samples[-1][0] - self.samples[0][0]


def cycles(samples: Sequence[Point], limit: float) -> list[tuple[Point, ...]]:
    """``samples`` cut at every drop: each cycle climbs (or holds) until a sample falls
    well below its peak, which begins the next."""
    floor = DROP_FLOOR * limit
    cut: list[tuple[Point, ...]] = []
    current: list[Point] = []
    peak = float("-inf")
    for sample in samples:
        if current and sample[1] < peak - max(DROP_SHARE * peak, floor):
            cut.append(tuple(current))
            current, peak = [], float("-inf")
        current.append(sample)
        peak = max(peak, sample[1])
    if current:
        cut.append(tuple(current))
    return cut


def maxima(samples: Sequence[Point], slices: int = MAX_POINTS) -> tuple[Point, ...]:
    """The highest sample of each of ``slices`` equal slices of time (empty ones left
    out), each at its own time."""
    if len(samples) <= slices:
        return tuple(samples)
    start, end = samples[0][0], samples[-1][0]
    width = (end - start) / slices or 1.0
    best: dict[int, Point] = {}
    for sample in samples:
        index = min(slices - 1, int((sample[0] - start) / width))
        if index not in best or sample[1] >= best[index][1]:
            best[index] = sample
    return tuple(best[i] for i in sorted(best))


def envelope(samples: Sequence[Point], limit: float) -> Envelope | None:
    """The upper envelope of ``samples`` (time-ordered), or None while a saw-tooth has
    too few peaks to say where its peaks go."""
    parts = [_Cycle(c) for c in cycles(samples, limit)]
    if len(parts) == 1:
        points = maxima(samples)
        return Envelope(points, f"maxima of {len(points)} slices")
    done, current = parts[:-1], parts[-1]
    longest = max(c.length for c in done)
    if current.length > 2 * longest and len(current.samples) >= MIN_CYCLE_PEAKS:
        points = maxima(current.samples)
        return Envelope(points, f"maxima since the last of {len(done)} drops (no drop since)")
    peaks = [c.peak for c in done]
    if current.peak[1] > max(p[1] for p in peaks):
        peaks.append(current.peak)
    if len(peaks) < MIN_CYCLE_PEAKS:
        return None
    points = tuple(peaks[-MAX_POINTS:])
    climbs = sorted(
        later[1] - earlier[1]
        for c in parts
        for earlier, later in zip(c.samples, c.samples[1:], strict=False)
        if later[1] > earlier[1]
    )
    step = climbs[int(0.9 * (len(climbs) - 1))] if climbs else 0.0
    return Envelope(points, f"peaks of {len(points)} cycles", ALIASING_STEPS * step)
