"""A healthy stack left alone stays quiet: no issue, no step, no page.

The landed code of 2026-12-03 declared every healthy service with a healthcheck "needs a
human" about 30 s after the stack settled: the container cache ignored passing
healthchecks, so the stall check compared a stale "last check" with the time of the pass.
Here the demo stack (db, backend and frontend with healthchecks, worker without) is left
alone for longer than the stall limit, with a pass every 2 s, and the controller must not
say a word about it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from controller.model import STALL_FLOOR
from tests.e2e.conftest import http_get, metric, wait_for

QUIET = STALL_FLOOR + 20.0  # seconds of healthy quiet after the stack settled


def _status(base: str) -> dict[str, Any]:
    """The running controller's document (the JSON file is rewritten only on a change)."""
    code, text = http_get(base + "/status")
    return json.loads(text) if code == 200 else {}


def _observed_at(base: str) -> datetime | None:
    stamp = _status(base).get("observed_at")
    return datetime.fromisoformat(stamp) if stamp else None


def test_a_healthy_stack_left_alone_past_the_stall_limit_gets_no_issue(make_stack):
    stack = make_stack()
    stack.up()
    base = stack.serve("--interval-quiet", "2")
    settled = wait_for(
        lambda: _status(base).get("converged") and _observed_at(base),
        60,
        "the healthy stack to be converged",
    )
    # quiet until a pass that began QUIET seconds after the settled one has been written
    wait_for(
        lambda: (seen := _observed_at(base)) and (seen - settled).total_seconds() >= QUIET,
        QUIET + 120,
        f"a pass {QUIET:g} s after the stack settled",
    )
    document = _status(base)
    assert document["issues"] == [], [(i["fingerprint"], i["detail"]) for i in document["issues"]]
    assert document["converged"] is True
    assert all(s["condition"] == "Ready" for s in document["services"])
    assert "stopped running" not in stack.log()
    for service in ("db", "backend", "frontend", "worker"):
        assert metric(base, "compose_controller_service_needs_human", _labels(stack, service)) in (
            0.0,
            None,
        )
    code, text = http_get(base + "/metrics")
    assert code == 200
    assert "compose_controller_remediation_actions_total{" not in text or all(
        line.endswith(" 0.0")
        for line in text.splitlines()
        if line.startswith("compose_controller_remediation_actions_total{")
    )


def _labels(stack, service: str) -> str:  # type: ignore[no-untyped-def]
    return f'env="{stack.env}",service="{service}"'
