"""What a reconcile tells the work queue to do with its key (controller-runtime's
``Result``): ``Done`` (nothing to wait for), ``RequeueAfter(seconds)`` (look again then:
a proof is pending, a backoff runs, Docker's restart policy is at work) or
``Failed(reason)`` (the engine did not answer: retried with the failure backoff)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    why: str = ""


@dataclass(frozen=True, slots=True)
class RequeueAfter:
    seconds: float
    why: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Result = Done | RequeueAfter | Failed
