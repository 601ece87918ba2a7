"""The scorer: every verdict of the controller held against the journal of what really
happened. Pure: an ``Evidence`` in, a ``Score`` out.

Matching rules:

- A fault's **window** runs from its injection (``t0``, less ``EARLY`` = 2 s of clock
  slack) to its end (the latest of its effect, the service back, the person's part done,
  the controller settled) plus ``LATE`` = 120 s. The injector never overlaps two faults
  on one service, so service and time identify the fault.
- An **issue opening** (a new fingerprint, or one opened again) is *backed* when it falls
  in the window of a fault with an expected issue that matches it: the same service, and
  its fingerprint starts with the expected prefix (``drift:api:exited``,
  ``log:worker:db-deadlock:``), or, for collateral of a dependency's outage, it is a log
  issue of an expected category; an expected ``text`` must be in its title or detail.
  Among several faults, the most recent one wins. Anything else is an issue with no
  fault behind it.
- A fault that expects an issue is **detected** when a matching issue opened, or an open
  one was counted again, inside its window; time to detect runs from the fault's effect
  (the death, the first failed check, the line's engine timestamp) to the controller's
  first record of it (its log line for an opening, else the issues file's time). A
  person's own stop (a person-stop, the stop of a dependency) is no fault: the time its
  issue took is scored apart (the controller waits a moment for the start of a restart).
  Otherwise the fault is **missed**.
- A fault that lasts (a crash loop) whose issue is resolved ("fixed by restart",
  "recovered") before the fault is over is **fixed while still failing**.
- A fix **step** (an attempt in the issues file, counted once however many issues it
  addressed) is backed when it falls in the window of a fault that allows that action on
  that service. Any other step is a **false action**: "on a person's service" when a
  person's operation on it is in its window, "on a healthy service" when no fault touched
  the service then, else "not expected for" the fault at hand. A fault whose required
  action never came is a **missing action**.
- **Verdicts** are openings and steps; **precision** is the backed share of them.
- **False pages**: a needs-human that no fault expects (an issue matched to a fault
  whose expectation is not "a human", or to no fault); a firing alert with no fault
  behind it (``ComposeCriticalIssueOpen``: no backed critical issue of the service open
  in the 45 s before it fired; ``ComposeServiceNeedsHuman``: no backed needs-human of the
  service before it; ``ComposeServiceFlapping`` and ``ComposeRemediationFailing``: no
  fault on the service in their 15 minutes; any other alert: always); a notification
  line about an issue whose opening (or, for needs-human, whose hand-over) is not backed.
- **Root-cause links**: a link is *right* when the linked issue matches a fault's
  expectation whose ``cause`` prefix the upstream issue's fingerprint starts with; every
  other link is *wrong* (a link where none is expected, to the wrong issue, or of an issue
  no fault explains). A collateral issue that was open at the same time as the expected
  cause and never linked to it is a *missing* link.
- A healthcheck that failed on its own (the engine's ``exec_die`` with an exit code,
  journaled by ``soak.watch`` outside every injected fault of the service) is ground
  truth too: it backs a ``failing-healthcheck`` issue of that service opened within its
  window, and nothing else (no action, no human, no stall).
- The **quiet stretch** (controller start to the first fault) must hold no opening that
  no real event explains, no step, no notification and no firing alert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from bench.latency import percentile
from soak.evidence import Evidence, Opening, Snapshot
from soak.journal import Expectation, Fault, IssueExpect

EARLY = 2.0
LATE = 120.0
LOOKBACK = {"ComposeServiceFlapping": 900.0, "ComposeRemediationFailing": 900.0}
BACKOFF_RESET = 600.0  # the documented default: ready this long, a fix is a first one again
CRITICAL_FOR = 45.0  # ComposeCriticalIssueOpen fires after 30 s: the issue was open then
CRASH_KINDS = frozenset({"crash", "crash-policy", "oom", "slow-start", "dependency-crash"})
# (a crash loop is no single crash: its recovery waits for the loop's end, not a fix)
HEALTH_KINDS = frozenset({"health-hang"})


@dataclass(frozen=True)
class Problem:
    what: str  # "false action", "false page", "missed", "missing action", "wrong link" ...
    at: float
    service: str
    detail: str
    fault: str = ""


@dataclass
class Score:
    faults: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    issues_opened: int = 0
    backed_openings: int = 0
    collateral_openings: int = 0
    needing_detection: int = 0
    detected: int = 0
    steps: int = 0
    backed_steps: int = 0
    false_actions: int = 0
    missing_actions: int = 0
    false_pages: int = 0
    false_pages_by: dict[str, int] = field(default_factory=dict)
    missed: int = 0
    fixed_early: int = 0  # issues resolved while their fault (a crash loop) still went on
    links_right: int = 0
    links_wrong: int = 0
    links_missing: int = 0
    detect: list[float] = field(default_factory=list)
    # a person's own stop is no fault: its issue ("left alone") comes once no start has
    # followed the stop for the controller's restart grace (a restart is no stop at all)
    person_report: list[float] = field(default_factory=list)
    recover: list[float] = field(default_factory=list)
    crash_detect: list[float] = field(default_factory=list)
    crash_recover: list[float] = field(default_factory=list)
    # crashes (not slow starts) of a service that had no fault asking for a fix in the 10
    # min before: a first fix, which the backoff of repeated faults (reset after 10 min
    # ready) does not delay
    crash_recover_first: list[float] = field(default_factory=list)
    health_detect: list[float] = field(default_factory=list)
    health_recover: list[float] = field(default_factory=list)
    quiet: dict[str, int] = field(default_factory=dict)
    spontaneous: int = 0  # healthchecks that failed on their own (the engine's record)
    quiet_seconds: float = 0.0
    fault_seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    per_fault: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baselines: dict[str, Any] = field(default_factory=dict)

    @property
    def recall(self) -> float | None:
        return self.detected / self.needing_detection if self.needing_detection else None

    @property
    def precision(self) -> float | None:
        verdicts = self.issues_opened + self.steps
        return (self.backed_openings + self.backed_steps) / verdicts if verdicts else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recall"] = self.recall
        data["precision"] = self.precision
        for name in (
            "crash_recover_first",
            "detect",
            "person_report",
            "recover",
            "crash_detect",
            "crash_recover",
            "health_detect",
            "health_recover",
        ):
            values = getattr(self, name)
            data[f"{name}_p50"] = percentile(values, 0.5)
            data[f"{name}_p95"] = percentile(values, 0.95)
        return data


class Scorer:
    def __init__(self, evidence: Evidence, late: float = LATE) -> None:
        self.ev = evidence
        self.late = late
        self.injected = list(evidence.faults)
        self.faults = sorted(
            [*evidence.faults, *self._spontaneous()], key=lambda f: -f.t0
        )  # newest first
        self.score = Score()
        self._openings = evidence.openings()
        self._backed: dict[tuple[str, int, float], tuple[Fault, IssueExpect]] = {}
        self._backed_humans: list[tuple[float, str, str]] = []  # (at, fingerprint, service)
        self._detect_of: dict[str, float | None] = {}
        self._acts_of: dict[str, list[str]] = {}
        self._recover_of: dict[str, float] = {}

    def _spontaneous(self) -> list[Fault]:
        """A healthcheck that failed on its own, outside every injected fault of its
        service: it may back a failing-healthcheck issue of that service, nothing more."""
        found: list[Fault] = []
        for n, (at, service) in enumerate(sorted(self.ev.spontaneous), start=1):
            if any(
                service in (f.service, *f.expect.services)
                and f.t0 - EARLY <= at <= f.end + self.late
                for f in self.ev.faults
            ):
                continue  # the fault's own (or its collateral: the api's while db is down)
            expected = IssueExpect(
                service, f"drift:{service}:unhealthy", False, kinds=("failing-healthcheck",)
            )
            found.append(
                Fault(
                    f"e{n:03d}",
                    "check-failed",
                    service,
                    {},
                    Expectation((expected,)),
                    t0=at,
                    effect_at=at,
                )
            )
        return found

    # --- attribution --------------------------------------------------------------------

    def window(self, fault: Fault) -> tuple[float, float]:
        return fault.t0 - EARLY, fault.end + self.late

    def in_window(self, fault: Fault, at: float) -> bool:
        low, high = self.window(fault)
        return low <= at <= high

    def attribute(
        self,
        service: str,
        fingerprint: str,
        category: str,
        detail: str,
        at: float,
        kind: str = "",
        severity: str = "",
    ) -> tuple[Fault, IssueExpect] | None:
        for fault in self.faults:
            if not self.in_window(fault, at):
                continue
            for expected in fault.expect.issues:
                if expected.matches(service, fingerprint, category, detail, kind, severity):
                    return fault, expected
        return None

    def problem(self, what: str, at: float, service: str, detail: str, fault: str = "") -> None:
        self.score.problems.append(Problem(what, at, service, detail, fault))

    # --- the parts ----------------------------------------------------------------------

    def run(self) -> Score:
        s = self.score
        s.faults = len(self.ev.faults)
        s.spontaneous = len(self.faults) - len(self.ev.faults)
        s.by_kind = dict(Counter(f.kind for f in self.ev.faults))
        if "faults" in self.ev.phases:
            start, end = self.ev.phases["faults"]
            s.fault_seconds = end - start
        if "quiet" in self.ev.phases:
            start, end = self.ev.phases["quiet"]
            s.quiet_seconds = end - start
        self._issues()
        self._detection()
        self._fixed_early()
        self._steps()
        self._humans()
        self._links()
        self._alerts()
        self._notices()
        self._quiet()
        self._recovery()
        s.problems.sort(key=lambda p: p.at)
        for fault in sorted(self.ev.faults, key=lambda f: f.t0):
            s.per_fault.append(
                {
                    "id": fault.id,
                    "kind": fault.kind,
                    "service": fault.service,
                    "params": fault.params,
                    "detect": self._detect_of.get(fault.id, "n/a"),
                    "actions": self._acts_of.get(fault.id, []),
                    "recover": self._recover_of.get(fault.id),
                    "problems": sum(1 for p in s.problems if p.fault == fault.id),
                }
            )
        s.notes.extend(self._status_disagrees())
        for skip in self.ev.skipped:
            s.notes.append(f"fault {skip.get('id')} not injected: {skip.get('why')}")
        for fault in self.ev.faults:
            for note in fault.notes:
                s.notes.append(f"{fault.id} {fault.kind} {fault.service}: {note}")
        return s

    def _status_disagrees(self) -> list[str]:
        """Where the controller's /status at the end and its newest issues file differ
        (both are rendered from one store: they must not)."""
        issues = self.ev.final_status.get("issues")
        if not issues:
            return []
        last = {fp: history[-1] for fp, history in self.ev.by_fingerprint().items()}
        found = []
        for issue in issues:
            snap = last.get(issue["fingerprint"])
            if snap is not None and (snap.state, snap.count) != (issue["state"], issue["count"]):
                found.append(
                    f"/status says {issue['fingerprint']} is {issue['state']} (count "
                    f"{issue['count']}), the issues file {snap.state} (count {snap.count})"
                )
        return found

    def _issues(self) -> None:
        s = self.score
        for o in self._openings:
            s.issues_opened += 1
            found = self.attribute(
                o.service, o.fingerprint, o.category, o.detail, o.at, o.kind, o.severity
            )
            if found is None:
                self.problem(
                    "issue with no fault behind it",
                    o.at,
                    o.service,
                    f"{o.fingerprint} ({o.severity}): {o.detail[:160]}",
                )
                continue
            self._backed[(o.fingerprint, o.occurrence, o.at)] = found
            s.backed_openings += 1
            if not found[1].required:
                s.collateral_openings += 1

    def _detection(self) -> None:
        s = self.score
        histories = self.ev.by_fingerprint()
        for fault in self.ev.faults:
            required = [e for e in fault.expect.issues if e.required]
            if not required:
                continue
            s.needing_detection += 1
            low, high = self.window(fault)
            times = [
                o.at
                for o in self._openings
                if (hit := self._backed.get((o.fingerprint, o.occurrence, o.at))) is not None
                and hit[0] is fault
                and hit[1] in required
            ]
            for fingerprint in histories:

                def expected(
                    snap: Snapshot, fp: str = fingerprint, wanted: list[IssueExpect] = required
                ) -> bool:
                    return any(
                        e.matches(snap.service, fp, snap.category, snap.detail, snap.kind)
                        for e in wanted
                    )

                seen = self.ev.sightings(fingerprint, low, expected)
                if seen is not None and seen <= high:
                    times.append(seen)
            if not times:
                self._detect_of[fault.id] = None
                s.missed += 1
                self.problem(
                    "missed fault",
                    fault.t0,
                    fault.service,
                    f"{fault.kind} {fault.params}: no {required[0].prefix}... in its window",
                    fault.id,
                )
                continue
            s.detected += 1
            took = max(0.0, min(times) - fault.effect)
            self._detect_of[fault.id] = took
            if fault.person:
                s.person_report.append(took)
                continue
            s.detect.append(took)
            if fault.kind in CRASH_KINDS:
                s.crash_detect.append(took)
            if fault.kind in HEALTH_KINDS:
                s.health_detect.append(took)

    def _fixed_early(self) -> None:
        """A fault that lasts (a crash loop) must not be called fixed or recovered before
        it is over: its issue resolved while the service still crashes is a false verdict."""
        for fault in self.ev.faults:
            if fault.kind != "crash-loop" or fault.ended_at is None:
                continue
            for fingerprint, history in self.ev.by_fingerprint().items():
                last = history[-1]
                if not any(
                    e.required and e.matches(last.service, fingerprint, last.category)
                    for e in fault.expect.issues
                ):
                    continue
                for before, snap in pairwise(history):
                    if (
                        snap.state == "resolved"
                        and before.state != "resolved"
                        and fault.t0 <= snap.t < fault.ended_at
                    ):
                        self.score.fixed_early += 1
                        self.problem(
                            "fixed while still failing",
                            snap.t,
                            fault.service,
                            f"{fingerprint}: {snap.resolution[:200]} "
                            f"({fault.ended_at - snap.t:.0f} s before the loop ended)",
                            fault.id,
                        )

    def _steps(self) -> None:
        s = self.score
        done: set[tuple[str, str, str]] = set()
        for step in self.ev.steps():
            s.steps += 1
            owner = next(
                (
                    f
                    for f in self.faults
                    if self.in_window(f, step.started_at)
                    and step.action in f.expect.actions.get(step.service, ())
                ),
                None,
            )
            if owner is not None:
                s.backed_steps += 1
                done.add((owner.id, step.service, step.action))
                self._acts_of.setdefault(owner.id, []).append(f"{step.action} {step.service}")
                continue
            s.false_actions += 1
            near = [
                f
                for f in self.faults
                if self.in_window(f, step.started_at)
                and step.service in (f.service, *f.expect.services)
            ]
            person = [f for f in near if f.person and f.service == step.service]
            if person:
                why = f"on a person's service ({person[0].id} {person[0].kind})"
            elif near:
                why = f"not expected for {near[0].id} {near[0].kind} {near[0].service}"
            else:
                why = "on a healthy service"
            self.problem(
                "false action",
                step.started_at,
                step.service,
                f"{step.action} ({step.outcome}) {why}; for {', '.join(step.fingerprints)}",
                near[0].id if near else "",
            )
        for fault in self.ev.faults:
            wanted = fault.expect.required_action
            if wanted is not None and (fault.id, *wanted) not in done:
                s.missing_actions += 1
                self.problem(
                    "missing action",
                    fault.t0,
                    wanted[0],
                    f"no {wanted[1]} of {wanted[0]} for {fault.kind}",
                    fault.id,
                )

    def _false_page(self, kind: str, at: float, service: str, detail: str, fault: str = "") -> None:
        self.score.false_pages += 1
        self.score.false_pages_by[kind] = self.score.false_pages_by.get(kind, 0) + 1
        self.problem(f"false page ({kind})", at, service, detail, fault)

    def _humans(self) -> None:
        for h in self.ev.humans():
            found = self.attribute(h.service, h.fingerprint, h.category, h.detail, h.at, h.kind)
            if found is not None and found[1].human:
                self._backed_humans.append((h.at, h.fingerprint, h.service))
                continue
            why = (
                f"needs-human not expected for {found[0].id} {found[0].kind}"
                if found is not None
                else "needs-human with no fault behind it"
            )
            self._false_page(
                "needs-human",
                h.at,
                h.service,
                f"{why}: {h.fingerprint}: {h.reason[:200]}",
                found[0].id if found else "",
            )

    def _links(self) -> None:
        s = self.score
        linked: set[tuple[str, str]] = set()
        for link in self.ev.links():
            # the issue is judged by its evidence then: the error it last saw (a stale error
            # from before a dependency's outage is not that outage's collateral)
            at = link.seen if link.seen is not None else link.at
            found = self.attribute(
                link.service, link.fingerprint, link.category, link.detail, at, link.kind
            )
            linked.add((link.fingerprint, link.cause))
            if found is not None and found[1].cause and link.cause.startswith(found[1].cause):
                s.links_right += 1
                continue
            s.links_wrong += 1
            wanted = (
                f"expected {found[1].cause or 'no link'} ({found[0].id} {found[0].kind})"
                if found is not None
                else "an issue no fault explains"
            )
            self.problem(
                "wrong link",
                link.at,
                link.service,
                f"{link.fingerprint} linked to {link.cause}; {wanted}; {link.detail[:160]}",
                found[0].id if found else "",
            )
        histories = self.ev.by_fingerprint()
        for (fingerprint, _occurrence, at), (fault, expected) in self._backed.items():
            if not expected.cause:
                continue
            if any(fp == fingerprint and c.startswith(expected.cause) for fp, c in linked):
                continue
            _, high = self.window(fault)
            causes = [fp for fp in histories if fp.startswith(expected.cause)]
            together = any(
                self.ev.active_at(cause, snap.t) is not None
                for snap in histories.get(fingerprint, [])
                if snap.active and at <= snap.t <= high
                for cause in causes
            )
            if together:
                s.links_missing += 1
                self.problem(
                    "missing link",
                    at,
                    fingerprint.split(":")[1],
                    f"{fingerprint} never linked to {expected.cause} while both were open",
                    fault.id,
                )

    def _opening_backed(self, fingerprint: str, at: float) -> bool:
        before = [o for o in self._openings if o.fingerprint == fingerprint and o.at <= at + 1.0]
        if not before:
            return False
        last: Opening = before[-1]
        return (last.fingerprint, last.occurrence, last.at) in self._backed

    def _alerts(self) -> None:
        histories = self.ev.by_fingerprint()
        for alert in self.ev.alerts:
            if alert.name == "ComposeCriticalIssueOpen":
                backed = any(
                    history[-1].service == alert.service
                    and any(
                        snap.severity == "critical"
                        for snap in history
                        if alert.start - CRITICAL_FOR - 30 <= snap.t <= alert.start
                    )
                    and self.ev.active_between(fp, alert.start - CRITICAL_FOR, alert.start)
                    and self._opening_backed(fp, alert.start)
                    for fp, history in histories.items()
                )
            elif alert.name == "ComposeServiceNeedsHuman":
                backed = any(
                    service == alert.service and at <= alert.start
                    for at, _fp, service in self._backed_humans
                )
            elif alert.name in LOOKBACK:
                backed = any(
                    alert.service in (f.service, *f.expect.services)
                    and alert.start - LOOKBACK[alert.name] - 60 <= f.t0 <= alert.start
                    for f in self.faults
                )
            else:
                backed = False
            if not backed:
                self._false_page(
                    "alert",
                    alert.start,
                    alert.service,
                    f"{alert.name} firing {alert.end - alert.start:.0f} s with no fault behind it",
                )

    def _notices(self) -> None:
        names = self.ev.fingerprint_of()
        for notice in self.ev.notices:
            fingerprint = names.get(notice.id, "?")
            if notice.event == "needs-human":
                backed = any(
                    fp == fingerprint and at <= notice.at + 1.0
                    for at, fp, _service in self._backed_humans
                )
            else:
                backed = self._opening_backed(fingerprint, notice.at)
            if not backed:
                self._false_page(
                    "notification",
                    notice.at,
                    notice.service,
                    f"{notice.event}: {notice.title} ({fingerprint})",
                )

    def _quiet(self) -> None:
        if "quiet" not in self.ev.phases:
            return
        start, end = self.ev.phases["quiet"]
        backed = {(fp, at) for fp, _occurrence, at in self._backed}
        self.score.quiet = {
            "issues": sum(
                1
                for o in self._openings
                if start <= o.at <= end and (o.fingerprint, o.at) not in backed
            ),
            "actions": sum(1 for st in self.ev.steps() if start <= st.started_at <= end),
            "notifications": sum(1 for n in self.ev.notices if start <= n.at <= end),
            "alerts": sum(1 for a in self.ev.alerts if a.start <= end and a.end >= start),
        }

    def _recovery(self) -> None:
        s = self.score
        for fault in self.ev.faults:
            if not fault.recovery_expected or fault.person or fault.recovered_at is None:
                continue
            took = max(0.0, fault.recovered_at - fault.effect)
            self._recover_of[fault.id] = took
            s.recover.append(took)
            if fault.kind in CRASH_KINDS:
                s.crash_recover.append(took)
                if fault.kind != "slow-start" and not any(
                    other.service == fault.service
                    and other.expect.required_action is not None
                    and fault.t0 - BACKOFF_RESET <= other.t0 < fault.t0
                    for other in self.ev.faults
                ):
                    s.crash_recover_first.append(took)
            if fault.kind in HEALTH_KINDS:
                s.health_recover.append(took)


def score(evidence: Evidence, late: float = LATE) -> Score:
    return Scorer(evidence, late).run()
