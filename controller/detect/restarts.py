"""Docker's own restart-policy restarts, as findings.

A container with ``restart: always`` that crashes is brought back by the engine within a
second; a poll sees it running. Its restart count still moves, so each increase between
two observations becomes a finding (one per restart): flapping shows, repetition
escalates it like any log error, and it resolves once the restarts stop. Pure: two
observations in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.model import Category, Finding, FindingKind, IssueSource, ObservedState, Severity

RESTART_PATTERN = "docker-restart"


def restart_findings(
    before: Mapping[str, int], observed: ObservedState, now: float
) -> tuple[list[Finding], dict[str, int]]:
    """Findings for the restarts since ``before`` (restart counts by container id), and the
    counts to compare the next observation with. A container seen for the first time
    brings no findings: its earlier restarts are history."""
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for c in observed.containers:
        counts[c.id] = c.restart_count
        previous = before.get(c.id)
        if previous is None or c.restart_count <= previous:
            continue
        text = (
            f"{c.name}: restart count {previous} -> {c.restart_count}, last exit code "
            f"{c.exit_code}"
            + (" (OOM killed)" if c.oom_killed else "")
            + (f"; on node {c.node}" if c.node else "")
        )
        findings.extend(
            Finding(
                service=c.service,
                container=c.name,
                ts=now,
                kind=FindingKind.RESTART,
                pattern_id=RESTART_PATTERN,
                category=Category.HEALTH,
                severity=Severity.MEDIUM,
                # a task with a node is a swarm's: Swarm's restart policy replaced it
                title=f"Restarted by {'Swarm' if c.node else 'Docker'}'s restart policy",
                fingerprint=f"engine:{c.service}:{RESTART_PATTERN}",
                evidence=text,
                line=text,
                hint="It keeps crashing and the engine keeps restarting it; its log says why.",
                source=IssueSource.ENGINE,
            )
            for _ in range(c.restart_count - previous)
        )
    return findings, counts
