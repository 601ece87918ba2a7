"""A bad change on a swarm, in words: the update Swarm itself paused, or one the
controller judged bad after Swarm completed it.

On one host the controller judges a change (``changes``, ``verdict``); on a swarm Swarm
already does while it carries out the update: an update whose new tasks fail is paused
(``update_config.failure_action: pause``, Swarm's default) and the service keeps its
``PreviousSpec``. That pause is the verdict; ``docker service rollback`` is what reverts
it. What goes wrong after Swarm completed the update the controller judges itself
(``swarmverdict``), and a bad one reads and reverts the same way.

With ``rollback: {scope: stack}`` the verdict covers the whole operation: the services of
the stack whose update Swarm began within ``OPERATION_SECONDS`` of the paused one's (a
``docker stack deploy`` updates them one after the other: ``operation_of``), each rolled
back with it, dependencies first, as one host rolls back the changes of one operation
(``swarmops`` keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from controller.model import (
    Action,
    Drift,
    Issue,
    RollbackMode,
    ServiceSpec,
    SwarmPause,
    SwarmUpdate,
    engine_time,
)
from controller.remediate.plan import Plan, Rung

# UpdateStatus.State of an update Swarm paused: its new tasks failed, or its rollback did
PAUSED = frozenset({"paused", "rollback_paused"})
# ... of a service Swarm rolled back: it runs its previous spec, not the stack file's
ROLLED_BACK = "rollback_completed"
# the states of an update of the same operation as a paused one, rolled back with it (one
# Swarm paused has its own issue; one rolled back already is left alone)
SWEPT = frozenset({"updating", "completed"})


def paused_reason(pause: SwarmPause) -> str:
    """Why the change is bad, as Swarm said it (or the controller, for one it judged)."""
    said = f": {pause.message}" if pause.message else ""
    if pause.because:
        judged = "went bad after Swarm completed it" if pause.judged else "was paused"
        return f"{pause.because}'s update {judged}{said}"
    if pause.judged:
        return f"after Swarm completed its update, {pause.message}"
    what = "the rollback of its update" if pause.state == "rollback_paused" else "its update"
    return f"Swarm paused {what}{said}"


def forced_paused(pause: SwarmPause) -> str:
    """Why a forced update Swarm paused goes to a person: it was a restart (the
    controller's or a person's ``--force``), not a change, and its new tasks failed."""
    said = f" ({pause.message})" if pause.message else ""
    return (
        f"Swarm paused the forced update of {pause.name} (docker service update --force: a "
        f"restart, not a change): its new tasks failed as well{said}; another restart cannot "
        f"help, a person can (`docker service ps {pause.name}` says why)"
    )


def in_order(pause: SwarmPause) -> str:
    """The commands that roll back the operation of ``pause``, in order ("": it has none
    of its own)."""
    if len(pause.operation) < 2:
        return ""
    others = ", ".join(n for n in pause.operation if n != pause.name)
    commands = ", ".join(f"`docker service rollback {n}`" for n in pause.operation)
    return (
        f"the same operation updated {others} (rollback scope: stack): they are rolled back "
        f"together, dependencies first: {commands}"
    )


def paused_text(pause: SwarmPause) -> tuple[str, str]:
    """The reason and the detail of the service's bad-change issue."""
    reason = paused_reason(pause)
    if pause.image == pause.previous:  # a new command, environment ...: not its image
        what = f"the update changed its spec, not its image ({pause.image or '?'})"
    else:
        what = f"the update changed its image from {pause.previous or '?'} to {pause.image or '?'}"
    if pause.reset:
        back = reset_words(pause)
    elif pause.state == "rollback_paused":
        back = (
            f"a rollback that failed is a person's: inspect it with `docker service ps "
            f"{pause.name}`"
        )
    else:
        back = f"Swarm keeps its previous spec; it is rolled back with `{pause.command}`"
    together = in_order(pause)
    return reason, f"{what}; {reason}; {back}" + (f"; {together}" if together else "")


def reset_words(pause: SwarmPause) -> str:
    """How a person reverts a bad update whose record Swarm reset since (``reset``)."""
    changed = pause.previous and pause.previous != pause.image  # else: not its image
    before = f"that asks for {pause.previous}" if changed else "of the spec before it"
    return (
        "Swarm no longer keeps the spec before it (a deploy or a scale since reset its "
        f"update's record; `{pause.command}` would not revert it): deploy the stack file "
        f"{before} again"
    )


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
    if pause.reset:
        return Plan(
            why=why, hand_over=f"{why}; {reset_words(pause)}", hand_over_fingerprints=fingerprints
        )
    if spec.rollback.mode is not RollbackMode.AUTO:
        together = in_order(pause)
        return Plan(
            why=why,
            hand_over=(
                f"{why}; rollback: {spec.rollback.mode} leaves it to a person: "
                f"`{pause.command}` rolls it back to {pause.previous or 'its previous spec'}"
            )
            + (f"; {together}" if together else ""),
            hand_over_fingerprints=fingerprints,
        )
    rung = Rung(
        Action.ROLLBACK,
        name="docker service rollback",
        outcome=rolled_back_from(pause),
    )
    return Plan((rung,), fingerprints, why=why)


def operation_of(service: str, updates: Mapping[str, SwarmUpdate], within: float) -> list[str]:
    """The services (compose names) whose last update Swarm began within ``within``
    seconds of ``service``'s (one operation: a ``docker stack deploy`` updates them one
    after the other), ``service`` among them; rolled back ones left out."""
    own = updates.get(service)
    at = engine_time(own.started) if own is not None else None
    if at is None:
        return []
    return sorted(
        name
        for name, update in updates.items()
        if (update.state in SWEPT or update.state == "paused")
        and (began := engine_time(update.started)) is not None
        and abs((began - at).total_seconds()) <= within
    )


def dependencies_first(names: Iterable[str], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """``names`` with each after those of them it depends on (through any service), else
    by name: the order a stack's rollback goes in."""
    wanted = set(names)
    order: list[str] = []

    def visit(name: str, path: frozenset[str]) -> None:
        if name in order or name in path:
            return
        own = specs.get(name)
        for dep in sorted(own.depends_on if own is not None else ()):
            visit(dep, path | {name})
        order.append(name)

    for name in sorted(wanted):
        visit(name, frozenset())
    return [n for n in order if n in wanted]
