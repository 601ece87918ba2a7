"""The fields of a log line: what it is about, for log shippers (``--log-format json``).

A line about a service, an issue, a step or an engine event carries these in loguru's
``record["extra"]``, each only where it applies:

- ``service``: the compose service;
- ``issue`` and ``fingerprint``: the issue's id and fingerprint (``drift:web:exited``);
- ``action``: the step taken or proven (``restart``, ``recreate``, ``runbook`` ...);
- ``event``: the engine event's action (``die``, ``start``, ``kill`` ...);
- ``engine``: the engine's address (``unix:///var/run/docker.sock``).

The text format prints none of them (its format names only the time, level and message);
JSON lines carry them. Callers log through the logger these return, or wrap a stretch of
work in ``context`` so every line inside carries the fields (a reconcile, an event):

    of_issue(issue).warning("{}: drift: {}", issue.service, issue.title)
    with context(service=name):
        reconciler.reconcile(name)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from loguru import logger

from controller.model import Issue

if TYPE_CHECKING:
    from loguru import Logger


def _given(
    service: str | None,
    issue: Issue | str | None,
    action: str | None,
    event: str | None,
    engine: str | None,
) -> dict[str, str]:
    known = issue if isinstance(issue, Issue) else None
    fields = {
        "service": service or (known.service if known is not None else None),
        "issue": known.id if known is not None else issue,
        "fingerprint": known.fingerprint if known is not None else None,
        "action": action,
        "event": event,
        "engine": engine,
    }
    return {name: str(value) for name, value in fields.items() if value}


def about(
    service: str | None = None,
    *,
    issue: Issue | str | None = None,
    action: str | None = None,
    event: str | None = None,
    engine: str | None = None,
) -> Logger:
    """The logger whose lines carry the fields given: an issue gives its service, id and
    fingerprint (an id alone only itself); fields not given are left out, never null."""
    return logger.bind(**_given(service, issue, action, event, engine))


def of_service(service: str) -> Logger:
    return about(service)


def of_issue(issue: Issue) -> Logger:
    return about(issue=issue)


def of_fault(
    service: str, fingerprints: Iterable[str], lookup: Callable[[str], Issue | None]
) -> Logger:
    """A line about a step's or a decision's issues: the first of ``fingerprints`` that
    ``lookup`` (the issue store's ``get``) knows gives the issue fields."""
    issue = next((i for fp in fingerprints if (i := lookup(fp)) is not None), None)
    return about(service, issue=issue)


def of_engine(address: str | None) -> Logger:
    return about(engine=address)


@contextmanager
def context(
    service: str | None = None,
    *,
    issue: Issue | str | None = None,
    action: str | None = None,
    event: str | None = None,
    engine: str | None = None,
) -> Iterator[None]:
    """Every line logged inside (in this thread) carries the fields given; a line's own
    ``about`` fields win over these."""
    with logger.contextualize(**_given(service, issue, action, event, engine)):
        yield
