"""Root causes: which issues are another service's fault, linked to it as "caused by".

A linked issue is not fixed on its own: the dependency is fixed first, then whatever
still fails, in dependency order. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.model import Category, DesiredState, Issue

LINKED_CATEGORIES = frozenset({Category.CONNECTION, Category.DATABASE})


def upstream(desired: DesiredState, service: str) -> list[str]:
    """Every service ``service`` depends on, directly or not, nearest first."""
    seen: list[str] = []
    frontier = list(desired.services[service].depends_on) if service in desired.services else []
    while frontier:
        dep = frontier.pop(0)
        if dep in seen or dep == service or dep not in desired.services:
            continue
        seen.append(dep)
        frontier.extend(desired.services[dep].depends_on)
    return seen


def root_causes(desired: DesiredState, issues: Sequence[Issue]) -> dict[str, list[str]]:
    """fingerprint -> ids of the upstream issues that explain it.

    While a service this one depends on has an active drift (down, unhealthy ...), this
    one's drifts and its connection and database errors are that service's fault: they
    are linked to it as "caused by" and not fixed on their own.
    """
    broken: dict[str, list[str]] = {}
    for issue in issues:
        if issue.active and issue.source == "drift" and issue.blocking:
            broken.setdefault(issue.service, []).append(issue.id)
    links: dict[str, list[str]] = {}
    for issue in issues:
        if not issue.active:
            continue
        if issue.source == "log" and issue.category not in LINKED_CATEGORIES:
            continue
        causes = [i for dep in upstream(desired, issue.service) for i in broken.get(dep, [])]
        if causes:
            links[issue.fingerprint] = causes
    return links
