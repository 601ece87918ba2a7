"""How often each container is sampled (``predict.cadence``)."""

from __future__ import annotations

import math

from controller.model import PredictSettings
from controller.predict.cadence import due, watched
from controller.predict.forecast import Series, Trend

MIB = 1024 * 1024
SETTINGS = PredictSettings(interval=30.0, quiet_interval=300.0)
FLAT = Trend(None, math.inf, "not rising")


def series(*values: float, limit: float = 256 * MIB) -> Series:
    samples = tuple((1e9 + 30 * i, v) for i, v in enumerate(values))
    return Series("memory", "web-1", "bytes", limit, "its limit", "OOM kill", samples)


def test_a_new_run_a_moving_one_a_full_one_and_a_rising_one_are_watched():
    assert watched(series(40 * MIB), FLAT, SETTINGS)  # one sample: nothing known yet
    assert watched(series(40 * MIB, 44 * MIB), FLAT, SETTINGS)  # moved 4 MiB: over 1 % of 256
    assert watched(series(140 * MIB, 140 * MIB), FLAT, SETTINGS)  # over half of its limit
    assert watched(series(40 * MIB, 40 * MIB), Trend(None, 600.0, "rising"), SETTINGS)


def test_a_still_one_under_half_its_limit_is_quiet():
    assert not watched(series(40 * MIB, 41 * MIB), FLAT, SETTINGS)  # under 1 % of the limit
    assert not watched(series(3, 3, limit=0), FLAT, SETTINGS)  # pids without a limit, unchanged
    assert watched(series(3, 5, limit=0), FLAT, SETTINGS)  # ... that changed (of its own size)


def test_a_slow_leak_sampled_close_together_is_judged_over_a_whole_interval():
    # 0.2 MiB/s under a 64 MiB limit, sampled every 5 s; a busy machine took the last two
    # samples 1 s apart: 0.2 MiB, under 1 % of the limit, yet it moved 1 MiB in 5 s
    settings = PredictSettings(interval=5.0, quiet_interval=300.0)
    times = (0.0, 5.0, 9.0, 10.0)
    samples = tuple((1e9 + t, (20 + 0.2 * t) * MIB) for t in times)
    leak = Series("memory", "leaky-1", "bytes", 64 * MIB, "its limit", "OOM kill", samples)
    assert watched(leak, FLAT, settings)
    still = Series(
        "memory",
        "web-1",
        "bytes",
        64 * MIB,
        "its limit",
        "OOM kill",
        tuple((1e9 + t, 20 * MIB) for t in times),
    )
    assert not watched(still, FLAT, settings)
    # its first two samples a busy engine answered 2 s apart: no interval of history yet
    young = Series("memory", "leaky-1", "bytes", 64 * MIB, "its limit", "OOM kill",
                   ((1e9, 20 * MIB), (1e9 + 2.0, 20.4 * MIB)))  # fmt: skip
    assert watched(young, FLAT, settings)


def test_due_every_interval_of_its_kind_half_a_round_early_in_time():
    assert due(None, False, 0.0, SETTINGS)
    assert not due(100.0, True, 114.0, SETTINGS) and due(100.0, True, 115.0, SETTINGS)
    assert not due(100.0, False, 384.0, SETTINGS) and due(100.0, False, 385.0, SETTINGS)
