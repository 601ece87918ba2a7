"""The gate's result as a JUnit XML file, for the test reports every CI system renders.

One test case per declared service (failed when a required one is not ready, skipped
when an optional one is not), one per blocking active issue (failed, with its detail,
plan, resolution and attempts as the text), one per service rolled back to a last-good
snapshot (failed: it is not at its declared config; the message says which change was
rolled back and why), and one for the engine when it could not be reached. Built from
the issues document, so it says nothing the JSON does not, redacted as the JSON is. The
XML is written by the ``junit-xml`` library, not by hand.

Times are real: a service's case lasts from the gate's start (or its first issue, if
later) until its last issue ended (resolved, or the verdict for one still open); one that
had none, from the gate's start until it counted ready (up and for its hold: 0 for a
service ready before the gate began), or the whole gate when it never did; an issue's
case, from its opening to its end; the engine's, the whole gate. The suite's time is
their sum (``junit-xml``'s rule), its timestamp the gate's start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string  # type: ignore[import-untyped]

from controller.gate.run import GateResult
from controller.gate.verdict import Verdict


def _issue_text(issue: Mapping[str, Any]) -> str:
    lines = [f"{issue['service']}: {issue['title']} [{issue['severity']} {issue['kind']}]"]
    for label, key in (("detail", "detail"), ("plan", "plan"), ("state", "resolution")):
        if issue.get(key):
            lines.append(f"{label}: {issue[key]}")
    if issue.get("waiting_for"):
        lines.append(f"waits for: {', '.join(issue['waiting_for'])}")
    for attempt in issue.get("attempts", []):
        lines.append(
            f"attempt {attempt['attempt']}: {attempt['action']} -> "
            f"{attempt.get('outcome') or 'running'}: {attempt.get('detail', '')}"
        )
    return "\n".join(lines)


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def _lasted(issues: Sequence[Mapping[str, Any]], result: GateResult) -> float:
    """Seconds from the first of ``issues`` (not before the gate began) to the end of the
    last one (the verdict for one still open); 0 for none."""
    if not issues:
        return 0.0
    opened = [t for i in issues if (t := _epoch(i.get("opened_at") or i["first_seen"]))]
    ended = [_epoch(i.get("resolved_at")) or result.ended for i in issues]
    begin = max(min(opened, default=result.started), result.started)
    return round(max(0.0, max(ended) - begin), 3)


def _service_time(name: str, doc: Mapping[str, Any], result: GateResult) -> float:
    """A service's case: its issues' time, else until it counted ready (see above)."""
    issues = [i for i in doc["issues"] if i["service"] == name]
    if issues:
        return _lasted(issues, result)
    ready = result.ready_at.get(name, result.ended)
    return round(max(0.0, min(ready, result.ended) - result.started), 3)


def junit_report(doc: Mapping[str, Any], declared: Mapping[str, bool], result: GateResult) -> str:
    """The XML text; ``declared`` maps every declared service to whether it is required."""
    env = doc["env"]
    services = {s["name"]: s for s in doc["services"]}
    active = [i for i in doc["issues"] if i["state"] != "resolved"]
    cases: list[TestCase] = []
    if result.verdict is Verdict.ENGINE_UNREACHABLE:
        engine = TestCase(
            "engine reachable",
            classname=f"compose-controller.{env}",
            elapsed_sec=round(max(0.0, result.ended - result.started), 3),
        )
        engine.add_failure_info(message=result.reason, output=result.reason)
        cases.append(engine)
    for name, required in declared.items():
        case = TestCase(
            f"service {name} ready",
            classname=f"compose-controller.{env}.services",
            elapsed_sec=_service_time(name, doc, result),
        )
        status = services.get(name)
        mine = [i for i in active if i["service"] == name]
        text = "\n\n".join(_issue_text(i) for i in mine)
        if status is None:
            message = "not observed: " + (result.reason if result.reason else "no pass completed")
        elif status["condition"] != "Ready":
            message = f"{name} is {status['condition']}" + (f": {mine[0]['title']}" if mine else "")
        elif name in result.unsettled:
            message = (
                f"{name} is ready, but not yet for long enough to trust "
                f"({result.unsettled[name]:.0f} s of its hold to go: it may crash again)"
            )
        else:
            cases.append(case)
            continue
        if required:
            case.add_failure_info(message=message, output=text or message)
        else:
            case.add_skipped_info(message=f"optional: {message}", output=text or message)
        cases.append(case)
    for issue in active:
        if issue["kind"] == "rolled-back":
            case = TestCase(
                f"service {issue['service']} at its declared config",
                classname=f"compose-controller.{env}.rollbacks",
                elapsed_sec=_lasted([issue], result),
            )
            case.add_failure_info(message=issue["title"], output=_issue_text(issue))
            cases.append(case)
            continue
        if not issue["blocking"]:
            continue
        case = TestCase(
            f"issue {issue['id']}: {issue['title']}",
            classname=f"compose-controller.{env}.issues",
            elapsed_sec=_lasted([issue], result),
        )
        case.add_failure_info(
            message=f"{issue['state']}: {issue['title']}", output=_issue_text(issue)
        )
        cases.append(case)
    suite = TestSuite(
        f"compose-controller {env}",
        cases,
        properties={"verdict": result.verdict.name.lower(), "reason": result.reason},
        timestamp=datetime.fromtimestamp(result.started, UTC).isoformat() or None,
    )
    return str(to_xml_report_string([suite], prettyprint=True))
