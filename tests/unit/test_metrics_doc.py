"""docs/metrics.md lists exactly the metrics the controller exports."""

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from controller.issues.store import IssueStore
from controller.metrics import Metrics, StateCollector
from tests.fakes import store_view

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def exported() -> dict[str, str]:
    registry = CollectorRegistry()
    Metrics(registry, "dev").declare(["web"], [])
    store = IssueStore("dev")
    from controller.model import ServiceCondition, ServiceStatus

    store.sync_drifts(
        [],
        [
            ServiceStatus(
                name="web",
                condition=ServiceCondition.READY,
                required=True,
                replicas=1,
                containers=1,
                running=1,
                healthy=1,
                restarts=0,
            )
        ],
    )
    registry.register(
        StateCollector(
            "dev",
            store_view(store),
        )
    )
    return {family.name: family.type for family in registry.collect()}


def documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \|", DOC.read_text(), flags=re.MULTILINE)
    return dict(rows)


def test_every_exported_metric_is_documented_with_its_type_and_nothing_else():
    names = exported()
    # prometheus_client reports counters without their _total suffix
    expected = {(n + "_total" if t == "counter" else n): t for n, t in names.items()}
    assert documented() == expected
