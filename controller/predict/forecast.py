"""A resource's trend projected to its limit, and whether that is within a horizon.

``trend`` fits a robust line (``fit.theil_sen``) to the upper envelope (``envelope``) of
one container run's samples within the window, once there are ``min_points`` samples over
``min_history`` seconds. The trend rises when the Mann-Kendall test says so at the 1 %
level and the rise over the span stands out of the points' spread (three times it) and is
more than 1 % of the limit; the time left is then the distance from the line's value now to
the limit at its slope (a saw-tooth's peaks must also climb more than sampling alone
makes them: ``envelope``). ``forecast`` turns a rising trend whose time left is within the
service's warning horizon into the ``model.Forecast`` a ``predicted`` issue carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.model import Fit, Forecast, PredictSettings, ServicePredict
from controller.predict.envelope import envelope as upper_envelope
from controller.predict.envelope import maxima
from controller.predict.fit import Point, theil_sen

SHOWN_SAMPLES = 60  # samples a forecast carries (the maxima of as many slices)
MIN_RISE_SHARE = 0.01  # a rise under 1 % of the limit over the span is no trend
SPREAD_TIMES = 3.0  # ... nor one under three times the points' spread
WARNING, CRITICAL = "warning", "critical"


@dataclass(frozen=True, slots=True)
class Series:
    """One resource of one container's current run, and what its limit means."""

    resource: str  # ``memory``, ``pids``, ``writable-layer``, ``volume/NAME``
    container: str  # the container's name
    unit: str  # ``bytes`` or ``pids``
    limit: float  # 0: no limit is known (a trend, never a forecast)
    limit_source: str  # "its limit", "the host's memory", "its pids limit", "declared"
    consequence: str  # what happens at the limit
    samples: tuple[Point, ...]  # (epoch s, value), oldest first


@dataclass(frozen=True, slots=True)
class Trend:
    fit: Fit | None  # None: too little history, or a saw-tooth with too few peaks
    seconds_left: float  # until the limit at this rate; inf when not rising (or no limit)
    why: str  # in words: "rising", "not rising", "2 min of history, 3 min needed" ...
    points: tuple[Point, ...] = ()  # the envelope the line went through
    window: tuple[Point, ...] = ()  # the samples it was fitted from

    @property
    def rising(self) -> bool:
        return math.isfinite(self.seconds_left)


def _window(series: Series, settings: PredictSettings, now: float) -> tuple[Point, ...]:
    start = now - settings.window
    return tuple(s for s in series.samples if s[0] >= start)


def trend(series: Series, settings: PredictSettings, now: float) -> Trend:
    """The trend of ``series`` at ``now`` (epoch seconds)."""
    samples = _window(series, settings, now)
    span = samples[-1][0] - samples[0][0] if samples else 0.0
    if len(samples) < settings.min_points or span < settings.min_history:
        return Trend(
            None,
            math.inf,
            f"{len(samples)} samples over {span:.0f} s; a trend needs "
            f"{settings.min_points} over {settings.min_history:.0f} s",
        )
    scale = series.limit or max(v for _, v in samples) or 1.0
    shape = upper_envelope(samples, scale)
    if shape is None:
        return Trend(
            None, math.inf, "a saw-tooth with too few peaks yet to tell a rise", window=samples
        )
    t0 = shape.points[0][0]
    line = theil_sen([(t - t0, v) for t, v in shape.points])
    fit = Fit(
        method=shape.method,
        points=len(shape.points),
        span_seconds=shape.points[-1][0] - t0,
        slope_per_second=line.slope,
        level=line.at(now - t0),
        tau=line.tau,
        z=line.z,
        spread=line.spread,
    )
    rise = line.slope * fit.span_seconds
    least = max(SPREAD_TIMES * line.spread, MIN_RISE_SHARE * scale, shape.noise)
    if not line.rising or rise <= least:
        return Trend(fit, math.inf, "not rising", shape.points, samples)
    if not series.limit:
        return Trend(fit, math.inf, "rising, toward no known limit", shape.points, samples)
    left = max(0.0, (series.limit - fit.level) / line.slope)
    return Trend(fit, left, "rising", shape.points, samples)


def horizon(seconds_left: float, predict: ServicePredict) -> str | None:
    """``critical`` or ``warning`` when the limit comes within that horizon, else None."""
    if seconds_left <= predict.critical:
        return CRITICAL
    if seconds_left <= predict.warning:
        return WARNING
    return None


def forecast(series: Series, found: Trend, predict: ServicePredict) -> Forecast | None:
    """The forecast a ``predicted`` issue carries, when ``found`` reaches the limit within
    the service's warning horizon; None otherwise."""
    if found.fit is None or not found.rising:
        return None
    within = horizon(found.seconds_left, predict)
    if within is None:
        return None
    shown = maxima(found.window, SHOWN_SAMPLES)
    return Forecast(
        resource=series.resource,
        container=series.container,
        unit=series.unit,
        usage=series.samples[-1][1],
        limit=series.limit,
        limit_source=series.limit_source,
        consequence=series.consequence,
        seconds_left=found.seconds_left,
        horizon=within,
        fit=found.fit,
        samples=[(round(t, 3), v) for t, v in shown],
    )
