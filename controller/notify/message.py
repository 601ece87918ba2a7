"""A batch of one service's transitions written as one message, redacted.

The title says the environment, the service and what happened; the body has one line per
transition (event, severity, title, issue id) and the why beneath it. Issue text is
already redacted by the store, but a message leaves the machine: everything is passed
through the same redaction once more, and bounded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from controller.detect.redact import redact
from controller.model import NotifyEvent, Severity
from controller.notify.outbox import Batch
from controller.notify.transitions import Transition

MAX_BODY = 4000  # characters; chat services cut long messages anyway


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    kind: str  # Apprise's notify type: info, success, warning, failure


def render(batch: Batch, env: str) -> Message:
    items = batch.transitions
    if len(items) == 1:
        (only,) = items
        what = f"{_word(only.event, only.occurrence)}: {only.title}"
    else:
        counts = Counter(_word(t.event, t.occurrence) for t in items)
        what = f"{len(items)} changes (" + ", ".join(f"{n} {e}" for e, n in counts.items()) + ")"
    title = f"[{env}] {batch.service}: {what}"
    lines: list[str] = []
    for t in items:
        lines.append(
            f"{_word(t.event, t.occurrence)} [{t.severity}] {t.title} (issue {t.issue_id})"
        )
        if t.detail:
            lines.append(f"  {t.detail}")
    body = "\n".join(lines)
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 15] + "\n... (cut short)"
    return Message(redact(title)[:250], redact(body), _kind(items))


def _word(event: NotifyEvent, occurrence: int) -> str:
    if event is NotifyEvent.OPENED and occurrence > 1:
        return "opened again"
    return str(event)


def _kind(items: tuple[Transition, ...]) -> str:
    if all(t.event is NotifyEvent.RESOLVED for t in items):
        return "success"
    worst = max((t.severity.rank for t in items if t.event is not NotifyEvent.RESOLVED), default=0)
    return "failure" if worst >= Severity.HIGH.rank else "warning"
