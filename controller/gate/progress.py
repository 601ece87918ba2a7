"""What a person watching the gate sees: a line per service state change, then a table.

While waiting, one line each time a service's condition (or what it waits on) changes,
like ``docker compose up --wait``::

      db         Ready
      backend    Degraded     backend exited with code 137
      backend    Remediating  restart: backend exited with code 137
      backend    Ready

At the end, a table of every declared service and what is left, and the verdict. Plain
ASCII, so a CI log in any locale shows it. Everything shown comes from the issue store,
whose texts are redacted. A damaged issues file the run set aside at start (so it began
without the earlier run's issues, backoff and budget) is said in both: a line of the
progress and a line under the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from controller.issues.present import intended
from controller.model import Issue, IssueState, ServiceCondition, ServiceRecord, ServiceStatus
from controller.runtime.statefiles import SetAside

Records = Mapping[str, ServiceRecord]  # each service's remediation record, by name

DETAIL_CHARS = 110


def _short(text: str, limit: int = DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _top_issue(service: str, issues: Iterable[Issue]) -> Issue | None:
    mine = [i for i in issues if i.service == service and i.active]
    if not mine:
        return None
    # needs a human first, then what is being fixed, then the most severe
    order = {IssueState.NEEDS_HUMAN: 0, IssueState.REMEDIATING: 1}
    return min(mine, key=lambda i: (order.get(i.state, 2), -i.severity.rank, i.first_seen))


def what_is_left(service: str, issues: Sequence[Issue], records: Records) -> str:
    """One line: what keeps ``service`` from being ready ("" when nothing)."""
    issue = _top_issue(service, issues)
    if issue is None:
        return ""
    view = intended(issue, records.get(service))
    if issue.state is IssueState.NEEDS_HUMAN:
        return f"needs a human: {issue.resolution or issue.title}"
    if issue.state is IssueState.REMEDIATING and issue.attempts:
        return f"{issue.attempts[-1].action}: {issue.title}"
    if view.waiting_for:
        return f"{issue.title}; waits for {', '.join(view.waiting_for)}"
    if issue.caused_by:
        causes = sorted({i.service for i in issues if i.id in issue.caused_by})
        return f"{issue.title}; caused by {', '.join(causes) or 'an upstream issue'}"
    return issue.title + (f" ({view.plan})" if view.plan else "")


def describe(
    status: ServiceStatus, issues: Sequence[Issue], records: Records, hold: float | None = None
) -> tuple[str, str]:
    """(condition, detail) of one service as the progress lines show it; ``hold``: the
    service is ready but must stay so for that many seconds before it counts."""
    if status.condition is ServiceCondition.PROGRESSING:
        return str(status.condition), "starting: health or probes not passing yet"
    if status.condition is ServiceCondition.READY:
        return str(status.condition), (f"must stay ready {hold:g} s to count" if hold else "")
    return str(status.condition), what_is_left(status.name, issues, records)


class Progress:
    """Prints a line when a service's state changes; silent when ``enabled`` is False."""

    def __init__(self, stream: TextIO, names: Sequence[str], enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._width = max((len(n) for n in names), default=7) + 2
        self._last: dict[str, tuple[str, str]] = {}
        self._engine = ""
        self._set_aside_said = False

    def update(
        self,
        statuses: Sequence[ServiceStatus],
        issues: Sequence[Issue],
        records: Records,
        engine: str,
        holds: Mapping[str, float] | None = None,
        set_aside: SetAside | None = None,
    ) -> None:
        """``holds``: services ready but not yet for long enough, with their hold;
        ``set_aside``: the damaged issues file the run kept aside at start."""
        if not self._enabled:
            return
        if set_aside is not None and not self._set_aside_said:
            self._set_aside_said = True
            self._print(
                f"  {'(state)':<{self._width}} {'Set aside':<12} {set_aside_note(set_aside)}"
            )
        if engine != self._engine:
            self._engine = engine
            if engine:
                self._print(f"  {'(engine)':<{self._width}} Unreachable  {_short(engine)}")
        for status in statuses:
            state = describe(status, issues, records, (holds or {}).get(status.name))
            if self._last.get(status.name) == state or state == ("Degraded", ""):
                continue  # unchanged, or between a fix and the pass that sees its result
            self._last[status.name] = state
            condition, detail = state
            line = f"  {status.name:<{self._width}} {condition:<12} {_short(detail)}"
            self._print(line.rstrip())

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)


def set_aside_note(set_aside: SetAside) -> str:
    """One line: which file was damaged, why, where it went, and what that means."""
    original = set_aside.path.name.rsplit(".unreadable-", 1)[0]
    return (
        f"{original} was damaged ({_short(set_aside.why, 80)}): kept as {set_aside.path.name}; "
        "this run started without its issues, backoff and budget"
    )


def final_table(
    declared: Mapping[str, bool],
    statuses: Sequence[ServiceStatus],
    issues: Sequence[Issue],
    records: Records,
    unsettled: Mapping[str, float] | None = None,
    set_aside: SetAside | None = None,
) -> list[str]:
    """Every declared service (name -> required), its state and what is left
    (``unsettled``: ready ones still in their hold, with the seconds to go); under it,
    the damaged issues file set aside at start (``set_aside``)."""
    by_name = {s.name: s for s in statuses}
    width = max((len(n) for n in declared), default=7) + 2
    rows = [f"{'SERVICE':<{width}} {'REQUIRED':<9} {'CONDITION':<12} {'CONTAINERS':<24} LEFT"]
    for name, required in declared.items():
        status = by_name.get(name)
        if status is None:
            condition, containers, left = "unknown", "-", "never observed"
        else:
            condition = str(status.condition)
            containers = f"{status.running}/{status.replicas} running"
            if status.healthy is not None:
                containers += f", {status.healthy} healthy"
            left = what_is_left(name, issues, records) or (
                "starting" if status.condition is ServiceCondition.PROGRESSING else "-"
            )
            if left == "-" and name in (unsettled or {}):
                left = f"must stay ready {(unsettled or {})[name]:.0f} s more"
        rows.append(
            f"{name:<{width}} {'yes' if required else 'no':<9} {condition:<12} "
            f"{containers:<24} {_short(left, 90)}"
        )
    if set_aside is not None:
        rows.append(f"state file set aside: {set_aside_note(set_aside)}")
    return rows
