"""A bad change on a swarm, in words: the update Swarm itself paused.

On one host the controller judges a change (``changes``, ``verdict``); on a swarm Swarm
already does: an update whose new tasks fail is paused (``update_config.failure_action:
pause``, Swarm's default) and the service keeps its ``PreviousSpec``. That pause is the
verdict; ``docker service rollback`` is what reverts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.model import Action, Drift, Issue, RollbackMode, ServiceSpec, SwarmPause
from controller.remediate.plan import Plan, Rung

# UpdateStatus.State of an update Swarm paused: its new tasks failed, or its rollback did
PAUSED = frozenset({"paused", "rollback_paused"})
# ... of a service Swarm rolled back: it runs its previous spec, not the stack file's
ROLLED_BACK = "rollback_completed"


def paused_reason(pause: SwarmPause) -> str:
    """Why the change is bad, as Swarm said it."""
    what = "the rollback of its update" if pause.state == "rollback_paused" else "its update"
    said = f": {pause.message}" if pause.message else ""
    return f"Swarm paused {what}{said}"


def paused_text(pause: SwarmPause) -> tuple[str, str]:
    """The reason and the detail of the service's bad-change issue."""
    reason = paused_reason(pause)
    if pause.image == pause.previous:  # a new command, environment ...: not its image
        what = f"the update changed its spec, not its image ({pause.image or '?'})"
    else:
        what = f"the update changed its image from {pause.previous or '?'} to {pause.image or '?'}"
    if pause.state == "rollback_paused":
        back = (
            f"a rollback that failed is a person's: inspect it with `docker service ps "
            f"{pause.name}`"
        )
    else:
        back = f"Swarm keeps its previous spec; it is rolled back with `{pause.command}`"
    return reason, f"{what}; {reason}; {back}"


def rolled_back_from(pause: SwarmPause) -> str:
    """What a rollback of the controller's says it did ("rolled back from X to Y because Z")."""
    new, old = pause.image or "?", pause.previous or "?"
    if new == old:
        new, old = f"its new spec ({new})", "its previous spec"
    return (
        f"rolled back from {new} to {old} because {paused_reason(pause)} "
        f"(docker service rollback {pause.name}: Swarm carries it out)"
    )


def swarm_rolled_back(rolled: SwarmPause) -> str:
    """What every output says of a service Swarm rolled back: "rolled back from X to Y
    (Swarm's rollback: Z)". After a rollback its spec is the old one and its
    ``PreviousSpec`` the change rolled back. Swarm's word is "rollback completed" whoever
    asked for it (its ``failure_action: rollback``, a ``docker service rollback``)."""
    bad, runs = rolled.previous or "?", rolled.image or "?"
    if bad == runs:
        bad, runs = f"its new spec ({bad})", "its previous spec"
    said = f": {rolled.message}" if rolled.message else ""
    return f"rolled back from {bad} to {runs} (Swarm's rollback{said})"


def swarm_rolled_back_text(rolled: SwarmPause, deploy: str) -> tuple[str, str]:
    """The title and the detail of the rolled-back issue of a service Swarm rolled back;
    ``deploy``: the command that deploys the stack file again."""
    detail = (
        f"{rolled.name} runs its previous spec ({rolled.image or '?'}), not the stack file's: "
        f"Swarm rolled back the update to {rolled.previous or 'its new spec'} (its "
        "update_config.failure_action: rollback, the controller's rollback: auto or a "
        "person's docker service rollback), and the stack file still asks for it: the next "
        f"deploy of that file deploys it again. Fix the file, then `{deploy}`"
    )
    return f"{swarm_rolled_back(rolled)}: not at its declared config", detail


def swarm_plan(spec: ServiceSpec, bad: Issue, drifts: Sequence[Drift], pause: SwarmPause) -> Plan:
    """The plan for a service whose update Swarm paused (``bad``, its issue): with
    ``rollback: auto`` the rollback Swarm keeps for it, else a person told the command.
    A rollback Swarm paused is a person's whatever the mode (it failed once already)."""
    fingerprints = (bad.fingerprint, *(d.fingerprint for d in drifts))
    why = bad.title
    if pause.state == "rollback_paused":
        return Plan(
            why=why,
            hand_over=f"{why}; a rollback that failed is not tried again by the controller",
            hand_over_fingerprints=fingerprints,
        )
    if spec.rollback.mode is not RollbackMode.AUTO:
        return Plan(
            why=why,
            hand_over=(
                f"{why}; rollback: {spec.rollback.mode} leaves it to a person: "
                f"`{pause.command}` rolls it back to {pause.previous or 'its previous spec'}"
            ),
            hand_over_fingerprints=fingerprints,
        )
    rung = Rung(
        Action.ROLLBACK,
        name="docker service rollback",
        outcome=rolled_back_from(pause),
    )
    return Plan((rung,), fingerprints, why=why)
