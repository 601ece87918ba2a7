"""The gate's loop: pass, fix, verify, repeat; then a verdict that never lies.

Never green without evidence: the verdict is ``CONVERGED`` only when the newest pass
reached the engine, began after the controller's last action, saw every declared service
and found each required one ready with no blocking issue (``Controller.converged``). An
engine that never answered, or stopped answering, is ``ENGINE_UNREACHABLE``; a deadline
reached while fixes were still running or services still starting is ``TIMED_OUT``;
anything else that is not converged (a human is needed, a fix did not take, nothing more
can be done) is ``NOT_CONVERGED``. A stack that converged on a last-good snapshot of some
service (a bad change rolled back, or held back because its image does not exist), or on
a swarm on the previous spec Swarm rolled a service back to, is ``ROLLED_BACK``, never
``CONVERGED``: the compose files ask for something else, and the reason says which change
was reverted and why. Each has its own exit code.

In ``--once`` the backoff is skipped (a CI job should not sit out minutes); the budget is
not. Drifts younger than ``--blip-seconds`` are left to heal on their own first.

A round pauses (``ROUND_PAUSE_SECONDS``) only to give what is under way time to change:
a round whose last pass found an issue no reconcile has seen yet (a crash that ended a
step's proof opens the next one) goes on at once, and so does one with nothing left to
act on or to wait for (a service handed to a human: the next round ends the gate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from controller.gate.verdict import Verdict
from controller.model import DriftKind, IssueState, ServiceCondition
from controller.runtime.controller import Controller

ENGINE_RETRY_SECONDS = 1.0
ROUND_PAUSE_SECONDS = 0.5
WAIT_STEP_SECONDS = 0.01  # a step's end is seen this soon (a look at counters, no I/O)


@dataclass(frozen=True, slots=True)
class GateResult:
    verdict: Verdict
    reason: str  # one line a person can act on
    # required services ready but not yet for their hold: seconds still to go
    unsettled: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # epoch s the gate began (its JUnit times count from it)
    ended: float = 0.0  # ... and reached its verdict
    # epoch s each service counted ready at the verdict (ready, and for its hold); a
    # service not ready then is not in it
    ready_at: dict[str, float] = field(default_factory=dict)


def run_gate(
    controller: Controller,
    *,
    timeout: float,
    engine_timeout: float,
    on_progress: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> GateResult:
    """Converge ``controller``'s stack within ``timeout`` seconds, waiting at most
    ``engine_timeout`` seconds for an engine that does not answer at first."""
    began = time.time()
    start = time.monotonic()
    deadline = start + timeout
    engine_deadline = start + min(engine_timeout, timeout)
    reached = progressing = False
    controller.open_once()
    try:
        while True:
            steps_before = controller.steps_taken
            if not controller.run_pass():
                on_progress()
                if time.monotonic() >= (deadline if reached else engine_deadline):
                    break
                sleep(ENGINE_RETRY_SECONDS)
                continue
            reached = True
            on_progress()
            submitted = _actionable(controller)
            _wait_for_fixes(controller, deadline, on_progress)
            if not controller.run_pass(submit=False):
                continue
            on_progress()
            if controller.settings.dry_run and not controller.unsettled():
                break  # nothing is changed: only the holds may still turn the verdict
            if controller.converged() and not controller.store.actionable():
                break
            # work appeared this round that no reconcile has seen yet (a dependent freed
            # when its dependency's issue resolved): the next round's pass submits it
            fresh = _actionable(controller) - submitted
            settling = _settling(controller)
            progressing = controller.steps_taken != steps_before or bool(fresh) or settling
            if not progressing or time.monotonic() >= deadline:
                break
            if not fresh and (settling or controller.store.actionable()):
                sleep(ROUND_PAUSE_SECONDS)  # give what is under way time to change
    finally:
        controller.close_once()
        on_progress()
    timed_out = time.monotonic() >= deadline
    result = _verdict(controller, progressing and timed_out, timeout)
    return replace(result, started=began, ended=time.time(), ready_at=_ready_at(controller))


def _ready_at(controller: Controller) -> dict[str, float]:
    """When each service ready at the verdict counted ready: ready since, plus its hold."""
    return {
        name: since + controller.hold(name)
        for name in controller.desired.services
        if (since := controller.store.ready_since(name)) is not None
    }


def _actionable(controller: Controller) -> set[tuple[str, str]]:
    """The actionable issues as (service, fingerprint): a new fault of a service already
    submitted (its step's proof failed on a crash) is work no reconcile has seen yet."""
    return {
        (service, issue.fingerprint)
        for service, issues in controller.store.actionable().items()
        for issue in issues
    }


def _wait_for_fixes(
    controller: Controller, deadline: float, on_progress: Callable[[], None]
) -> None:
    """Wait until no step runs, waits to be taken or waits to be proven, showing progress
    meanwhile, up to ``deadline``. A key only due later for another reason (a blip left
    to heal, Docker's own loop watched) is the next round's: passes must go on."""
    while controller.workers_busy or controller.work_queued() or controller.in_flight():
        if time.monotonic() >= deadline:
            return
        on_progress()
        time.sleep(WAIT_STEP_SECONDS)


def _settling(controller: Controller) -> bool:
    """Something may still come right without a new step: a service still starting (its health
    or probes not passing yet), a drift within its blip time, a fix at work, a step
    still being proven, a change still under watch (its verdict to come), a service
    ready again waiting out its issue's hold, one ready but not yet for its hold (it
    might crash again), a reconcile due later (Docker's own restart loop watched, a
    person's operation), or a service failing its checks before the engine's verdict
    (unhealthy, then fixed, or the next check passes: one slow check on a busy CI
    machine ended the gate "not converged")."""
    return (
        any(s.condition is ServiceCondition.PROGRESSING for s in controller.store.services())
        or any(
            i.active and i.kind is DriftKind.FAILING_HEALTHCHECK for i in controller.store.issues()
        )
        or controller.blips_pending()
        or controller.workers_busy > 0
        or bool(controller.in_flight())
        or bool(controller.verdicts_pending())
        or bool(controller.store.recovering())
        or bool(controller.unsettled())
        or controller.work_due_later()
    )


def _verdict(controller: Controller, timed_out_progressing: bool, timeout: float) -> GateResult:
    if controller.engine_error:
        return GateResult(
            Verdict.ENGINE_UNREACHABLE,
            f"the engine could not be reached: {controller.engine_error}",
        )
    rolled = [f"{name} {text}" for name, text in controller.not_as_declared().items()]
    if controller.converged():
        if rolled:
            return GateResult(
                Verdict.ROLLED_BACK,
                "every required service is ready, but not as declared: " + "; ".join(rolled),
            )
        return GateResult(Verdict.CONVERGED, "every required service is ready")
    statuses = {s.name: s for s in controller.store.services()}
    waiting = sorted(
        name
        for name, spec in controller.desired.services.items()
        if spec.required
        and (name not in statuses or statuses[name].condition is not ServiceCondition.READY)
    )
    unsettled = controller.unsettled()
    holding = ", ".join(
        f"{name} ready for {controller.hold(name) - left:.0f} of {controller.hold(name):g} s"
        for name, left in sorted(unsettled.items())
    )
    watched = controller.verdicts_pending()
    if timed_out_progressing:
        notes = [f"{', '.join(waiting)} not ready yet"] if waiting else []
        notes += [f"must stay ready: {holding}"] if holding else []
        notes += [f"a change under watch: {', '.join(watched)}"] if watched else []
        # a check failing before the engine's verdict held the gate (``_settling``): say so
        notes += [
            f"{i.service} failing its healthcheck ({i.detail.split(';')[0]}), the engine's "
            "verdict to come"
            for i in controller.store.issues()
            if i.active and i.kind is DriftKind.FAILING_HEALTHCHECK
        ]
        return GateResult(
            Verdict.TIMED_OUT,
            f"timed out after {timeout:g} s while still progressing"
            + (f" ({'; '.join(notes)})" if notes else ""),
            unsettled,
        )
    human = sorted(
        {i.service for i in controller.store.issues() if i.state is IssueState.NEEDS_HUMAN}
    )
    parts = []
    if waiting:
        parts.append(f"not ready: {', '.join(waiting)}")
    if human:
        parts.append(f"needs a human: {', '.join(human)}")
    blocking = [i for i in controller.store.issues() if i.active and i.blocking]
    if not parts and blocking:
        parts.append(f"{len(blocking)} blocking issue(s) open")
    if holding:
        parts.append(f"must stay ready: {holding}")
    if watched:
        parts.append(f"a change under watch: {', '.join(watched)}")
    parts += rolled
    return GateResult(Verdict.NOT_CONVERGED, "; ".join(parts) or "not converged", unsettled)
