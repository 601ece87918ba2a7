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
    assert watched(series(40 * MIB), FLAT)  # one sample: nothing known yet
    assert watched(series(40 * MIB, 44 * MIB), FLAT)  # moved 4 MiB: over 1 % of 256
    assert watched(series(140 * MIB, 140 * MIB), FLAT)  # over half of its limit
    assert watched(series(40 * MIB, 40 * MIB), Trend(None, 600.0, "rising"))


def test_a_still_one_under_half_its_limit_is_quiet():
    assert not watched(series(40 * MIB, 41 * MIB), FLAT)  # under 1 % of the limit
    assert not watched(series(3, 3, limit=0), FLAT)  # pids without a limit, unchanged
    assert watched(series(3, 5, limit=0), FLAT)  # ... that changed (of its own size)


def test_due_every_interval_of_its_kind_half_a_round_early_in_time():
    assert due(None, False, 0.0, SETTINGS)
    assert not due(100.0, True, 114.0, SETTINGS) and due(100.0, True, 115.0, SETTINGS)
    assert not due(100.0, False, 384.0, SETTINGS) and due(100.0, False, 385.0, SETTINGS)
