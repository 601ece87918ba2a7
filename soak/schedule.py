"""The seeded schedule of faults: which fault, on which service, with which parameters,
and the least gap after the previous injection. ``random.Random(seed)`` decides all of
it, so one seed is one schedule (the actual times also depend on how fast the stack comes
back: the injector never overlaps two faults on one service).

Two lengths:

- ``short_tour``: about twenty faults covering every part of the catalog CI must see
  (SIGKILL, Docker's restart policy, a healthcheck blip and hang, the probe, the runbook,
  a dependency crashing and one stopped by a person with an unrelated error meanwhile,
  a person's stop, restart and new config, a flood, a crash loop, and an error line of
  each of the 8 categories). Faults that need no proof come first in a seeded order; the
  crashes,
  whose proof holds the service for as long as it had run (docs/remediation.md: the crash pattern),
  come last, each on a service no later fault touches, so the tour never waits minutes.
- ``long_plan``: every kind once (seeded order), then weighted draws, for as many as the
  run's minutes allow.

Both keep each service's fix steps (restarts, the runbook, a job's start) within the
documented budget (5 per hour; here at most 4 per service per hour of faults), so a
correct controller never needs a human for a spent budget: the soak is about verdicts,
not about loop protection, which tests/e2e/test_crash_loops.py proves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from soak.catalog import LOG_CASES, TARGETS, spec

BUDGET = 5  # the desired state's (default) budget per service per hour
WEIGHTS = {
    "log": 30,
    "health-blip": 8,
    "health-hang": 5,
    "probe-fail": 3,
    "crash": 8,
    "crash-policy": 4,
    "crash-loop": 2,
    "oom": 3,
    "slow-start": 3,
    "runbook": 3,
    "dependency-crash": 2,
    "dependency-stop": 2,
    "person-stop": 5,
    "person-restart": 5,
    "person-up": 4,
    "job-fail": 2,
    "flood": 4,
    "quiet": 4,
}


@dataclass
class Planned:
    index: int
    kind: str
    service: str
    params: dict[str, object] = field(default_factory=dict)
    gap: float = 0.0  # at least this many seconds after the previous injection

    @property
    def id(self) -> str:
        return f"f{self.index:03d}"


def params_for(
    kind: str, service: str, rng: random.Random, index: int, seed: int
) -> dict[str, object]:
    if kind == "log":
        cases = [c for c in LOG_CASES if service in c.services]
        return {"category": rng.choice(cases).category}
    if kind == "slow-start":
        return {"seconds": rng.randint(8, 15)}
    if kind == "crash-loop":
        return {"seconds": 3, "for": rng.randint(30, 50)}
    if kind == "dependency-stop":
        return {"seconds": rng.randint(15, 30), "foreign": rng.random() < 0.5}
    if kind == "person-stop":
        return {"seconds": rng.randint(15, 30)}
    if kind == "runbook":
        return {"database": f"orders_{seed}_{index}"}
    if kind == "flood":
        return {"lines": rng.randint(5000, 20000)}
    if kind == "quiet":
        return {"seconds": rng.randint(20, 60)}
    return {}


def short_tour(seed: int) -> list[Planned]:
    rng = random.Random(seed)
    early: list[tuple[str, str, dict[str, object]]] = [
        ("log", "api", {"category": "connection"}),
        ("log", "worker", {"category": "database"}),
        ("log", "api", {"category": "auth"}),
        ("log", "reporter", {"category": "config"}),
        ("log", rng.choice(("reporter", "worker")), {"category": "import"}),
        ("log", "reporter", {"category": "health"}),
        ("health-blip", "edge", {}),
        ("person-restart", "agent", {}),
        ("person-up", "reporter", {}),
        ("crash-policy", "ticker", {}),
        ("flood", rng.choice(("api", "ticker", "agent")), {"lines": rng.randint(3000, 8000)}),
    ]
    rng.shuffle(early)
    middle: list[tuple[str, str, dict[str, object]]] = [
        ("dependency-stop", "db", {"seconds": rng.randint(15, 25), "foreign": True}),
        ("runbook", "worker", {"database": f"orders_{seed}_tour"}),
        ("person-stop", "reporter", {"seconds": rng.randint(15, 25)}),
        ("log", "api", {"category": "filesystem"}),
        ("log", "worker", {"category": "performance"}),
        ("health-hang", "edge", {}),
        ("probe-fail", "api", {}),
    ]
    late: list[tuple[str, str, dict[str, object]]] = [
        ("crash-loop", "reporter", {"seconds": 3, "for": rng.randint(30, 45)}),
        ("crash", "agent", {}),
        ("dependency-crash", "db", {}),
    ]
    return [
        Planned(n, kind, service, params, round(rng.uniform(1.0, 3.0), 2))
        for n, (kind, service, params) in enumerate([*early, *middle, *late], start=1)
    ]


def long_plan(seed: int, minutes: float, count: int = 600) -> list[Planned]:
    """Every kind once, then weighted draws; ``count`` is more than any run injects."""
    rng = random.Random(seed)
    hours = max(1, int(-(-minutes // 60)))
    cap = (BUDGET - 1) * hours
    steps: dict[str, int] = {}
    plan: list[Planned] = []
    kinds = list(WEIGHTS)
    rng.shuffle(kinds)
    first = iter(kinds)
    tries = 0
    while len(plan) < count and tries < count * 20:
        tries += 1
        kind = next(first, None) or rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        service = rng.choice(TARGETS[kind])
        index = len(plan) + 1
        params = params_for(kind, service, rng, index, seed)
        wanted = spec(kind, service, params).steps
        if any(steps.get(s, 0) + n > cap for s, n in wanted.items()):
            continue
        for s, n in wanted.items():
            steps[s] = steps.get(s, 0) + n
        plan.append(Planned(index, kind, service, params, round(rng.uniform(3.0, 25.0), 2)))
    return plan
