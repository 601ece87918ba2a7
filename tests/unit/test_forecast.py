"""Forecasts: a robust line through an upper envelope, projected to the limit.

Series are simulated at the sampler's cadence with noise and jitter in the times: a leak
must be forecast soon after the trend is evident, a garbage collector's saw-tooth never,
however its cycle falls against the sampling.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.model import PredictSettings, ServicePredict
from controller.predict.envelope import cycles, envelope
from controller.predict.fit import theil_sen
from controller.predict.forecast import Series, Trend, forecast, horizon, trend
from controller.predict.suggest import suggested_limit
from controller.predict.words import about, sentence, size

MIB = 1024 * 1024
START = 1_800_000_000.0
LIMIT = 256 * MIB
DEFAULTS = PredictSettings()
HORIZONS = ServicePredict()

Shape = Callable[[float, random.Random], float | None]


def simulate(
    shape: Shape,
    *,
    limit: float = LIMIT,
    interval: float = 30.0,
    duration: float = 1800.0,
    seed: int = 0,
    settings: PredictSettings = DEFAULTS,
) -> list[tuple[float, float, Trend]]:
    """Sample ``shape`` every ``interval`` (±10 %) and fit after each sample, as the
    controller does: (seconds since start, value, trend) per sample, until ``shape``
    says the process died (None) or ``duration`` passed."""
    rnd = random.Random(seed)
    samples: list[tuple[float, float]] = []
    out = []
    t = 0.0
    while t < duration:
        value = shape(t, rnd)
        if value is None:
            break
        samples.append((START + t, value))
        series = Series("memory", "web-1", "bytes", limit, "its limit", "OOM kill", tuple(samples))
        out.append((t, value, trend(series, settings, START + t)))
        t += interval * rnd.uniform(0.9, 1.1)
    return out


def leak(rate_mib: float, base_mib: float = 20.0) -> Shape:
    def shape(t: float, rnd: random.Random) -> float | None:
        value = (base_mib + rate_mib * t) * MIB + rnd.gauss(0, 0.3 * MIB)
        return value if value < LIMIT else None  # the OOM kill

    return shape


def saw_tooth(period: float, low_mib: float = 60, high_mib: float = 200) -> Shape:
    def shape(t: float, rnd: random.Random) -> float | None:
        phase = (t % period) / period
        return (low_mib + (high_mib - low_mib) * phase) * MIB + rnd.gauss(0, 0.5 * MIB)

    return shape


def first_rising(run: list[tuple[float, float, Trend]]) -> tuple[float, Trend] | None:
    return next(((t, found) for t, _, found in run if found.rising), None)


def test_a_leak_of_a_fifth_of_a_mib_a_second_is_forecast_a_quarter_hour_ahead():
    run = simulate(leak(0.2))
    killed = run[-1][0] + 30  # the next sample would have been over the limit
    first = first_rising(run)
    assert first is not None
    at, found = first
    assert at <= DEFAULTS.min_history + 2 * 30  # as soon as there is history enough
    assert killed - at >= 15 * 60
    truth = killed - at
    assert found.seconds_left == pytest.approx(truth, rel=0.15)
    assert horizon(found.seconds_left, HORIZONS) == "warning"


@pytest.mark.parametrize("period", [60, 90, 150, 170])
@pytest.mark.parametrize("seed", range(6))
def test_a_saw_tooth_under_its_limit_is_never_forecast_whatever_its_cycle(period, seed):
    run = simulate(saw_tooth(period), seed=seed)
    assert [t for t, _, found in run if found.rising] == []


@pytest.mark.parametrize("period", [240, 600])
def test_a_long_tooth_looks_like_a_leak_until_its_first_drop_and_never_after(period):
    run = simulate(saw_tooth(period))
    rising = [t for t, _, found in run if found.rising]
    assert rising and max(rising) < period  # its first climb only: then peaks count
    assert all(found.why != "rising" for t, _, found in run if t > period + 30)


def test_a_leak_under_a_garbage_collector_is_forecast_from_its_rising_peaks():
    def shape(t: float, rnd: random.Random) -> float | None:
        phase = (t % 150) / 150
        value = (60 + 0.05 * t + 100 * phase) * MIB + rnd.gauss(0, 0.5 * MIB)
        return value if value < LIMIT else None

    run = simulate(shape, duration=4000)
    first = first_rising(run)
    assert first is not None
    at, found = first
    assert found.fit is not None and found.fit.method.startswith("peaks of")
    assert run[-1][0] - at > 10 * 60  # still well ahead of the kill


def test_a_saw_tooth_that_stops_dropping_is_then_fitted_on_its_climb():
    def shape(t: float, rnd: random.Random) -> float | None:
        if t < 900:
            return saw_tooth(150, 60, 120)(t, rnd)
        value = (60 + 0.2 * (t - 900)) * MIB
        return value if value < LIMIT else None

    run = simulate(shape, duration=3000)
    first = first_rising(run)
    assert first is not None and first[0] > 900
    assert first[1].fit is not None and "no drop since" in first[1].fit.method


def test_memory_that_holds_still_with_noise_is_not_rising():
    run = simulate(lambda t, rnd: 120 * MIB + rnd.gauss(0, 2 * MIB))
    assert first_rising(run) is None
    assert run[-1][2].why == "not rising"


def test_a_leak_that_stops_turns_the_trend():
    def shape(t: float, rnd: random.Random) -> float | None:
        return (20 + 0.2 * min(t, 400)) * MIB + rnd.gauss(0, 0.3 * MIB)

    run = simulate(shape, duration=2400)
    assert first_rising(run) is not None
    assert not run[-1][2].rising  # the plateau outlasts the window's climb


def test_no_forecast_before_the_minimum_history_and_it_says_why():
    run = simulate(leak(2.0), duration=120)
    assert all(not found.rising for _, _, found in run)
    assert "a trend needs 6 over 180 s" in run[-1][2].why


def test_a_resource_without_a_limit_has_a_trend_but_no_time_left():
    samples = tuple((START + 30 * i, float(i * MIB)) for i in range(20))
    found = trend(
        Series("pids", "w", "pids", 0, "its pids limit", "fork fails", samples),
        DEFAULTS,
        samples[-1][0],
    )
    assert found.fit is not None and found.fit.slope_per_second > 0
    assert found.why == "rising, toward no known limit" and math.isinf(found.seconds_left)


def test_theil_sen_ignores_a_few_wild_points():
    points = [(float(t), 2.0 * t + 1) for t in range(20)]
    points[3] = (3.0, 500.0)
    points[11] = (11.0, -400.0)
    line = theil_sen(points)
    assert line.slope == pytest.approx(2.0)
    assert line.intercept == pytest.approx(1.0)
    assert line.rising and line.tau > 0.7


def test_a_saw_tooth_is_cut_into_cycles_at_its_drops():
    samples = [(float(t), float(10 + t % 5)) for t in range(20)]
    assert [len(c) for c in cycles(samples, 100.0)] == [5, 5, 5, 5]
    shape = envelope(samples, 100.0)
    assert shape is not None and shape.method == "peaks of 3 cycles"
    assert shape.noise == pytest.approx(1.5)


def test_the_forecast_carries_its_fit_and_samples_and_reads_as_the_issue_says():
    run = simulate(leak(0.2))
    at, found = next((t, f) for t, _, f in run if f.rising and f.seconds_left < 15 * 60)
    samples = tuple((START + t, v) for t, v, _ in run if t <= at)
    series = Series("memory", "web-1", "bytes", LIMIT, "its limit", "OOM kill", samples)
    made = forecast(series, found, HORIZONS)
    assert made is not None and made.horizon == "critical"
    assert made.fit.points >= 6 and 6 <= len(made.samples) <= 60
    text = sentence(made, "web")
    assert text.startswith("at this rate web reaches its 256 MiB memory limit in about ")
    assert text.endswith(" min (OOM kill)")


def test_words():
    assert size(256 * MIB) == "256 MiB" and size(1.5 * 1024 * MIB) == "1.5 GiB"
    assert about(14 * 60 + 10) == "about 14 min" and about(40) == "about 40 s"


def test_the_suggested_limit_is_the_vpa_formula():
    assert suggested_limit(200 * MIB) == 300 * MIB  # usage + 100 MiB
    assert suggested_limit(1000 * MIB) == 1200 * MIB  # usage x 1.2


@settings(max_examples=40, deadline=None)
@given(
    period=st.floats(40, 170),
    low=st.floats(10, 120),
    amplitude=st.floats(20, 120),
    interval=st.sampled_from([10.0, 30.0]),
    seed=st.integers(0, 1000),
)
def test_no_saw_tooth_shorter_than_the_history_needed_is_ever_forecast(
    period, low, amplitude, interval, seed
):
    run = simulate(
        saw_tooth(period, low, low + amplitude), interval=interval, duration=1800, seed=seed
    )
    assert [t for t, _, found in run if found.rising] == []
