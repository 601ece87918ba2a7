"""How often each container is sampled: the cost budget spent where it is needed.

A sample costs the engine milliseconds (``bench/sampling.py``), so a container is sampled
every ``PredictSettings.interval`` (30 s) only while it is *watched*: a new run (fewer
than two samples, or samples that do not span one interval yet), a resource above
``WATCH_SHARE`` of its limit, one that moved by more than ``MOVE_SHARE`` of its limit (of
its own size, without a limit) over at least one interval (since the newest sample that
much older: two samples a busy machine took close together say nothing of a slow leak),
or one whose trend rises. Every other container is
sampled every ``quiet_interval`` (5 min): a leak moves it past ``MOVE_SHARE`` at its next
sample, and from then on it is watched. A round takes the containers whose interval has
(nearly) passed.
"""

from __future__ import annotations

from controller.model import PredictSettings
from controller.predict.forecast import Series, Trend

WATCH_SHARE = 0.5  # above half of its limit: watched
MOVE_SHARE = 0.01  # moved by 1 % of its limit since the sample before: watched


def watched(series: Series, found: Trend, settings: PredictSettings) -> bool:
    """Whether this series wants the fast cadence."""
    samples = series.samples
    if len(samples) < 2 or found.rising:
        return True
    newest = samples[-1][0]
    earlier = [v for t, v in samples[:-1] if newest - t >= settings.interval]
    if not earlier:
        return True  # not one interval of history yet: as new a run as one with one sample
    now, before = samples[-1][1], earlier[-1]
    if series.limit and now > WATCH_SHARE * series.limit:
        return True
    scale = series.limit or max(abs(now), abs(before)) or 1.0
    return abs(now - before) > MOVE_SHARE * scale


def due(last_at: float | None, watching: bool, now: float, settings: PredictSettings) -> bool:
    """Whether a container last sampled at ``last_at`` (None: never, or another run) is to
    be sampled in the round at ``now`` (half a round early is in time)."""
    if last_at is None:
        return True
    every = settings.interval if watching else settings.quiet_interval
    return now - last_at >= every - settings.interval / 2
