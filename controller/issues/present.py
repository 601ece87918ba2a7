"""What the controller intends for an issue, as every output shows it.

An issue's plan, what it waits for, when the next attempt may come and the deadline of
the step being proven are not kept with the issue: they are derived, whenever a document
is built, from the service's remediation record (``model.ServiceRecord``), their only
copy. While a step is at work, from the step; for an issue waiting to be acted on, from
what the controller last said it will do for it (said after the issue last opened); for
an issue another's fault explains, that it waits for that one, with the evidence; for an
issue resolved or handed to a human, nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from controller.detect.redact import redact
from controller.model import Issue, IssueState, ServiceRecord, at_utc

LINKED_PLAN = "not fixed on its own, its cause first: "  # a linked issue's plan


class Intended(BaseModel):
    plan: str = ""
    waiting_for: list[str] = Field(default_factory=list)
    next_attempt_at: datetime | None = None  # backing off: the next fix not before then
    verifying_until: datetime | None = None  # a step was carried out: proven by then or failed


def intended(issue: Issue, record: ServiceRecord | None) -> Intended:
    """What the controller intends for ``issue``, from its service's ``record``."""
    if record is None:
        record = ServiceRecord()
    step = record.step
    if issue.state is IssueState.REMEDIATING:
        if step is None or issue.fingerprint not in step.addresses:
            return Intended()
        if step.finished_at is None:
            return Intended(plan=f"running: {step.action}")
        return Intended(plan=f"verifying until {at_utc(step.until)}", verifying_until=step.until)
    if issue.caused_by and issue.state in (IssueState.OPEN, IssueState.FAILED):
        return Intended(plan=LINKED_PLAN + "; ".join(_causes(issue)))
    intent = record.intent
    if (
        issue.state not in (IssueState.OPEN, IssueState.FAILED)
        or issue.fingerprint not in intent.fingerprints
        or (intent.said_at is not None and intent.said_at < issue.opened_at)
    ):
        return Intended()
    return Intended(
        plan=intent.text,
        waiting_for=list(intent.waiting_for),
        next_attempt_at=record.throttle.next_step_at if intent.backing_off else None,
    )


def _causes(issue: Issue) -> list[str]:
    evidence = issue.cause_evidence
    return [f"{c} ({evidence[c]})" if evidence.get(c) else c for c in issue.caused_by]


def presented(issue: Issue, record: ServiceRecord | None) -> dict[str, Any]:
    """The issue as the JSON, ``/status``, the report and a hook see it."""
    view = intended(issue, record)
    view.plan = redact(view.plan)  # it may name what a container said (an issue's title)
    return {**issue.model_dump(mode="json"), **view.model_dump(mode="json")}
