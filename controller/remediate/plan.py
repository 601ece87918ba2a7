"""What to do about one service's issues: the strategy ladder, chosen by what is wrong.

Pure: issues and settings in, a ``Plan`` out. The rules, in order:

1. Runbooks first: a declared fix for a recurring log issue of the service comes before
   any generic action (it removes the cause; a restart would only hide it).
2. A container that crashed, loops or is unhealthy while the service logs a config,
   import or auth error is not restarted: a restart cannot fix those. Its runbook runs if
   one is declared (then the service is restarted), a service with ``build:`` is rebuilt
   for an import error, and otherwise it goes to a human at once: no restart loop.
3. Otherwise the ladder of the drift's kind (restart, then recreate; start what is
   missing), with the action that fixed the same fault last time tried first.
4. A log issue with no drift is acted on only if its pattern suggests an action (restart
   or recreate, never for config, import or auth) or a runbook fits; else it is reported.
   So is an outdated config the controller may not apply (``report``): the service runs
   well, nothing is wrong enough for a person to be paged.
5. A ``predicted`` issue (a forecast of exhaustion) is acted on only when its service
   declares it: a runbook for its ``predicted-<resource>`` pattern id, or a restart (no
   recreate: a new container of the same image leaks the same).
6. The external hook, when declared, is the last rung of every ladder and what runs
   instead of handing a service to a human.
7. While the service's own restart policy is restarting it (``docker_restarting``), the
   controller adds no restart or recreate of its own: a runbook for the cause, a
   recreate for an outdated config, or nothing (Docker's loop is watched; the budget,
   counted in Docker's restarts, hands it to a human if it does not converge).

Only log issues that explain the fault are passed in as ``causes`` (``blame.explains``):
a stale error line never keeps a crashed service from being restarted. Runbooks that
already ran for their cause are left out by the caller: they are not a step.

Drifts the engine is still judging (a healthcheck that has begun failing) are left out:
they are reported at once, and planned for when the engine's verdict turns them into
another drift (unhealthy).

A bad change has a plan of its own (``change_plan``): with ``rollback: auto`` one step,
the rollback to its last good snapshot (once: a change rolled back before is a person's
then); with ``notify`` a person, told the command that rolls it back; a change that never
ran (its image does not exist) while the service runs what was good is held there,
without a step. The service's drifts go with it: they are the change's doing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.model import (
    Action,
    Category,
    Change,
    Drift,
    DriftKind,
    FindingKind,
    Issue,
    RemediationSettings,
    RollbackMode,
    Runbook,
    ServiceSpec,
    Snapshot,
)
from controller.remediate.strategies import WATCHED, ladder, left_alone_reason, primary

RESTART_CANNOT_FIX = frozenset({Category.CONFIG, Category.IMPORT, Category.AUTH})
# drifts of a service that runs well, reported and never handed to a person (no page):
# a config edited and not yet applied (``recreate_outdated`` lets the controller apply it)
# and a swarm service a person scaled down (theirs, like a stop: said, left alone)
REPORTED = frozenset({DriftKind.OUTDATED, DriftKind.SCALED_DOWN})
# drifts a restart policy answers while it restarts the service (a container in its
# restart delay): Docker does nothing about a container that runs unhealthy, but Swarm
# kills an unhealthy task and replaces it (its drift is unhealthy, its task restarting)
DOCKER_RESTARTS = frozenset({DriftKind.EXITED, DriftKind.RESTARTING, DriftKind.UNHEALTHY})
CRASHES = frozenset(
    {
        DriftKind.EXITED,
        DriftKind.RESTARTING,
        DriftKind.DEAD,
        DriftKind.UNHEALTHY,
        DriftKind.JOB_FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class Rung:
    """One rung of a ladder: an action, or a declared runbook (or a rollback of a change,
    with what its issues' resolution says once it is proven)."""

    action: Action
    runbook: Runbook | None = None
    change: str = ""  # a rollback: the change it reverts
    name: str = ""  # a rollback: "rollback to snapshot 2"
    outcome: str = ""  # a rollback: "rolled back from X to Y because Z"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"runbook {self.runbook.name}" if self.runbook else str(self.action)


@dataclass(frozen=True, slots=True)
class Plan:
    rungs: tuple[Rung, ...] = ()
    addresses: tuple[str, ...] = ()  # fingerprints the steps act on
    quiet: tuple[str, ...] = ()  # log fingerprints that must stop recurring to verify
    why: str = ""  # the issue behind the plan, for logs and dry runs
    hand_over: str = ""  # nothing fits: a human gets it, with this reason
    hand_over_fingerprints: tuple[str, ...] = ()
    # nothing to do, nothing wrong enough for a person: reported, with what would fix it
    report: str = ""
    docker_restarting: bool = False  # the restart policy is at work: watch it, add nothing
    hold_back: bool = False  # a bad change that never ran: keep what runs, no step

    @property
    def describe(self) -> str:
        return " then ".join(s.label for s in self.rungs)


def _runbook_steps(
    service: str, issues: Sequence[Issue], runbooks: Sequence[Runbook]
) -> tuple[list[Rung], list[Issue]]:
    steps: list[Rung] = []
    matched: list[Issue] = []
    for issue in issues:
        for runbook in runbooks:
            if runbook.applies_to(service, issue.pattern_id):
                if all(s.runbook is not runbook for s in steps):
                    steps.append(Rung(Action.RUNBOOK, runbook))
                if issue not in matched:
                    matched.append(issue)
    return steps, matched


def make_plan(
    spec: ServiceSpec,
    drifts: Sequence[Drift],
    log_issues: Sequence[Issue],
    settings: RemediationSettings,
    learned: Mapping[str, Action],
    has_build: bool = False,
    *,
    causes: Sequence[Issue] | None = None,
    docker_restarting: bool = False,
) -> Plan:
    """The plan for one service; ``log_issues`` are its recurring, unlinked log issues,
    ``causes`` those of them that explain a crash (all of them when None)."""
    by_severity = sorted(log_issues, key=lambda i: -i.severity.rank)
    runbooks, runbook_issues = _runbook_steps(spec.name, by_severity, settings.runbooks)
    drifts = [d for d in drifts if d.kind not in WATCHED]
    if drifts:
        blame = by_severity if causes is None else sorted(causes, key=lambda i: -i.severity.rank)
        plan = _drift_plan(spec, drifts, blame, runbooks, runbook_issues, learned, has_build)
        if docker_restarting and primary(drifts).kind in DOCKER_RESTARTS:
            docker = _docker_plan(spec, drifts, plan)
            return _with_hook(docker, settings) if docker.hand_over else docker
        return _with_hook(plan, settings)
    for issue in by_severity:
        steps, _ = _runbook_steps(spec.name, [issue], settings.runbooks)
        if not steps and issue.kind is FindingKind.PREDICTED:
            steps = [Rung(Action.RESTART)] if issue.suggested == "restart" else []
        elif not steps and issue.category not in RESTART_CANNOT_FIX:
            if issue.suggested == "restart":
                steps = [Rung(Action.RESTART), Rung(Action.RECREATE)]
            elif issue.suggested == "recreate":
                steps = [Rung(Action.RECREATE)]
        if steps:
            return _with_hook(
                Plan(tuple(steps), (issue.fingerprint,), (issue.fingerprint,), why=issue.title),
                settings,
            )
    return Plan()


def _drift_plan(
    spec: ServiceSpec,
    drifts: Sequence[Drift],
    log_issues: Sequence[Issue],
    runbooks: list[Rung],
    runbook_issues: list[Issue],
    learned: Mapping[str, Action],
    has_build: bool,
) -> Plan:
    main = primary(drifts)
    fingerprints = tuple(d.fingerprint for d in drifts)
    rungs = ladder(main, spec)
    if not rungs and main.kind in REPORTED:
        return Plan(why=main.title, addresses=fingerprints, report=left_alone_reason(main, spec))
    if not rungs:
        return Plan(
            why=main.title,
            hand_over=left_alone_reason(main, spec),
            hand_over_fingerprints=fingerprints,
        )
    generic = [Rung(a) for a in rungs]
    first = learned.get(main.fingerprint)
    if first in rungs:
        generic.sort(key=lambda step: step.action is not first)
    quiet = tuple(i.fingerprint for i in runbook_issues)
    blockers = [i for i in log_issues if i.category in RESTART_CANNOT_FIX]
    if main.kind in CRASHES and blockers:
        cause = blockers[0]
        if runbooks:
            steps = [*runbooks, *generic[:1]]
        elif cause.category is Category.IMPORT and has_build:
            steps = [Rung(Action.REBUILD)]
        else:
            return Plan(
                why=main.title,
                hand_over=(
                    f"{spec.name} fails with a {cause.category} error that a restart cannot "
                    f"fix: {cause.title} ({cause.detail[:160]})"
                ),
                hand_over_fingerprints=(*fingerprints, cause.fingerprint),
            )
        addresses = (*fingerprints, *(i.fingerprint for i in [cause, *runbook_issues]))
        return Plan(
            tuple(steps), tuple(dict.fromkeys(addresses)), quiet, why=f"{main.title}: {cause.title}"
        )
    addresses = (*fingerprints, *quiet)
    return Plan(tuple([*runbooks, *generic]), addresses, quiet, why=main.title)


def change_plan(
    spec: ServiceSpec,
    bad: Issue,
    change: Change,
    drifts: Sequence[Drift],
    *,
    snapshot: Snapshot | None,
    command: str,
    rolled_back_before: bool,
    runs_snapshot: bool,
) -> Plan:
    """The plan for a service whose ``change`` was judged bad (``bad``, its issue): a
    rollback to ``snapshot`` with ``rollback: auto``, else a person told ``command``."""
    fingerprints = (bad.fingerprint, *(d.fingerprint for d in drifts))
    why = bad.title
    if snapshot is None:
        return Plan(
            why=why,
            hand_over=f"{why}; there is no last-good snapshot to roll back to",
            hand_over_fingerprints=fingerprints,
        )
    back = f"`{command}` rolls it back to snapshot {snapshot.number} ({snapshot.identity})"
    if spec.rollback.mode is not RollbackMode.AUTO:
        return Plan(
            why=why,
            hand_over=f"{why}; rollback: {spec.rollback.mode} leaves it to a person: {back}",
            hand_over_fingerprints=fingerprints,
        )
    if change.missing_image and runs_snapshot:
        return Plan(addresses=fingerprints, why=why, hold_back=True)
    if rolled_back_before:
        return Plan(
            why=why,
            hand_over=(
                f"{why}; this change was rolled back once already and is not rolled back "
                f"again by the controller: {back}"
            ),
            hand_over_fingerprints=fingerprints,
        )
    rung = Rung(
        Action.ROLLBACK,
        change=change.id,
        name=f"rollback to snapshot {snapshot.number}",
        outcome=(
            f"rolled back from {change.after} to snapshot {snapshot.number} "
            f"({snapshot.identity}) because {change.reason}"
        ),
    )
    return Plan((rung,), fingerprints, why=why)


def _docker_plan(spec: ServiceSpec, drifts: Sequence[Drift], plan: Plan) -> Plan:
    """Docker's restart policy is restarting the service: keep only what it cannot do."""
    outdated = any(d.kind is DriftKind.OUTDATED for d in drifts)
    steps = tuple(
        s for s in plan.rungs if s.runbook is not None or (outdated and s.action is Action.RECREATE)
    )
    if outdated and not any(s.action is Action.RECREATE for s in steps):
        steps = (*steps, Rung(Action.RECREATE))
    why = f"{plan.why}; {spec.restart.by}'s restart policy ({spec.restart}) is restarting it"
    if plan.hand_over:  # a config, import or auth error: Docker's restarts cannot fix it
        return Plan(
            why=why,
            hand_over=plan.hand_over,
            hand_over_fingerprints=plan.hand_over_fingerprints,
            docker_restarting=True,
        )
    addresses = plan.addresses or tuple(d.fingerprint for d in drifts)
    return Plan(steps, addresses, plan.quiet, why=why, docker_restarting=True)


def _with_hook(plan: Plan, settings: RemediationSettings) -> Plan:
    if settings.hook is None:
        return plan
    if plan.hand_over:
        return Plan((Rung(Action.HOOK),), plan.hand_over_fingerprints, why=plan.why)
    if plan.rungs:
        return Plan((*plan.rungs, Rung(Action.HOOK)), plan.addresses, plan.quiet, plan.why)
    return plan
