"""The baselines: the soak's crash and healthcheck faults, in the order they were injected,
replayed on two more copies of the stack with no controller.

- ``autoheal``: the stack under bench/autoheal_baseline.py (docker-autoheal's loop:
  every 5 s, restart what is unhealthy or exited), read through bench/latency.py's
  ``Autoheal``; it detects when it prints its notice. The one-shot job is removed once
  the stack is up, as autoheal would restart a finished job every 5 s.
- ``docker``: the stack with ``restart: on-failure`` (Docker's own policy); crashes only,
  as the engine restarts no unhealthy container; no detection step of its own. Each fault
  waits until the service has run 10.5 s, so Docker's restart delay is back to 100 ms
  (bench/latency.py does the same).

The same injector does the same faults; time to recover is measured as for the
controller (the engine showing the service ready in a new run, from the fault's effect).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import docker

from bench.latency import Autoheal, Project, parse_time
from soak.engine import Engine, wait_until
from soak.inject import Injector, Timeouts
from soak.journal import Expectation, Fault, Journal
from soak.score import CRASH_KINDS, HEALTH_KINDS
from soak.stack import SERVICES, Ports, SoakStack
from tests.e2e.conftest import free_ports

DOCKER_RESET = 10.5  # s of running after which Docker's restart delay is 100 ms again
SETTLE = 180.0  # s the copy may take to be all ready before a fault


def replayable(faults: list[Fault], contender: str) -> list[Fault]:
    kinds = CRASH_KINDS if contender == "docker" else CRASH_KINDS | HEALTH_KINDS
    return [f for f in sorted(faults, key=lambda f: f.t0) if f.kind in kinds]


def run_baseline(
    contender: str, workdir: Path, faults: list[Fault], stopping: threading.Event
) -> dict[str, Any]:
    """Replay ``faults`` (the soak's, in order) against ``contender``; its figures."""
    plan = replayable(faults, contender)
    root = workdir / contender
    result: dict[str, Any] = {
        "faults": 0,
        "crash_recover": [],
        "health_recover": [],
        "notes": [],
    }
    if contender == "autoheal":
        result.update({"detected": 0, "crash_detect": [], "health_detect": []})
    if not plan:
        return result
    ports = Ports(*free_ports(3))
    restart = "on-failure" if contender == "docker" else "no"
    stack = SoakStack(root, ports, label=contender, restart=restart)
    client = docker.from_env()
    autoheal: Autoheal | None = None
    try:
        stack.up()
        if contender == "autoheal":
            stack.compose("rm", "--force", "--stop", "migrate")
            autoheal = Autoheal(Project(stack.project, client, ()), root)
            autoheal.start()
        engine = Engine(stack, client)
        injector = Injector(
            stack, engine, Journal(root / "journal.jsonl"), None, Timeouts(), stopping
        )
        services = [s for s in SERVICES if not (contender == "autoheal" and s == "migrate")]
        for n, original in enumerate(plan, start=1):
            if stopping.is_set():
                break
            if not wait_until(lambda: engine.all_ready(services), SETTLE, 0.2, stopping):
                result["notes"].append(f"{original.id}: the copy was not ready; skipped")
                continue
            if contender == "docker":
                wait_until(
                    lambda o=original: _running_for(engine, o.service) >= DOCKER_RESET,
                    60,
                    0.2,
                    stopping,
                )
            fault = Fault(
                f"{contender}-{n:03d}",
                original.kind,
                original.service,
                dict(original.params),
                Expectation(),
            )
            if not injector.run(fault, ()):
                result["notes"].append(f"{original.id}: not injected")
                continue
            result["faults"] += 1
            family = "crash" if fault.kind in CRASH_KINDS else "health"
            if fault.recovered_at is not None:
                result[f"{family}_recover"].append(max(0.0, fault.recovered_at - fault.effect))
            else:
                result["notes"].append(f"{fault.id} {fault.kind} {fault.service}: not back")
            if autoheal is not None:
                seen = autoheal.notices(fault.service, fault.t0 - 0.5)
                if seen:
                    result["detected"] += 1
                    result[f"{family}_detect"].append(max(0.0, seen[0] - fault.effect))
        return result
    finally:
        if autoheal is not None:
            autoheal.stop()
        stack.down()
        client.close()


def _running_for(engine: Engine, service: str) -> float:
    data = engine.inspect(service)
    if data is None or data["State"]["Status"] != "running":
        return 0.0
    return time.time() - parse_time(data["State"]["StartedAt"])
