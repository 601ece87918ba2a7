"""What the controller said, recorded while the run goes on.

- ``IssueWatcher`` reads the controller's issues file (``docker_issues_<env>.json``,
  replaced atomically after every change, at once when an issue opens) whenever it
  changes, and writes one line to ``timeline.jsonl`` per issue whose state, count,
  links or attempts changed (and per service whose step-being-proven changed), stamped
  with the document's ``generated_at``. The newest document answers the injector's "has
  the controller settled?".
- ``NoticeLog`` stamps each message the Apprise ``json://`` receiver got with the time it
  arrived (``notifications.jsonl``).
- ``fetch_alerts`` asks Prometheus, once at the end, when each alert of the shipped rules
  fired (the ``ALERTS`` series over the run).
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.conftest import http_get
from tests.receiver import Receiver

ACTIVE = frozenset({"open", "remediating", "failed", "needs-human"})


def epoch(stamp: str | None) -> float | None:
    """An ISO 8601 time of the controller's documents as epoch seconds."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def issue_line(issue: dict[str, Any]) -> dict[str, Any]:
    """What the timeline keeps of one issue."""
    return {
        "type": "issue",
        "fingerprint": issue["fingerprint"],
        "id": issue["id"],
        "service": issue["service"],
        "source": issue["source"],
        "kind": issue["kind"],
        "category": issue.get("category", ""),
        "severity": issue.get("severity", ""),
        "state": issue["state"],
        "occurrences": issue.get("occurrences", 1),
        "count": issue.get("count", 0),
        "last_seen": epoch(issue.get("last_seen")),
        "caused_by": sorted(issue.get("caused_by") or []),
        "title": issue.get("title", "")[:200],
        "detail": issue.get("detail", "")[:400],
        "resolution": issue.get("resolution", "")[:300],
        "attempts": [
            [a["action"], epoch(a.get("started_at")), a.get("outcome"), a.get("detail", "")[:200]]
            for a in issue.get("attempts") or []
        ],
    }


class IssueWatcher:
    """Follows the issues file; ``latest()`` is the newest document read."""

    def __init__(self, path: Path, out: Path, every: float = 0.05) -> None:
        self.path = path
        self.out = out
        self.every = every
        self._latest: dict[str, Any] = {}
        self._seen: dict[str, str] = {}
        self._signature: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="issues", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def latest(self) -> dict[str, Any]:
        with self._lock:
            return self._latest

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.every)

    def poll(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            return
        signature = (st.st_mtime_ns, st.st_size)
        if signature == self._signature:
            return
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # replaced while read: the next look finds the new one
        self._signature = signature
        with self._lock:
            self._latest = doc
        self._record(doc)

    def _record(self, doc: dict[str, Any]) -> None:
        at = epoch(doc.get("generated_at")) or time.time()
        lines: list[dict[str, Any]] = []
        for issue in doc.get("issues", []):
            line = issue_line(issue)
            key = json.dumps(line, sort_keys=True)
            if self._seen.get(issue["fingerprint"]) != key:
                self._seen[issue["fingerprint"]] = key
                lines.append(line)
        for service, history in (doc.get("remediation") or {}).items():
            verifying = proving(history)
            line = {
                "type": "verifying",
                "service": service,
                "verifying": verifying is not None,
                "action": (verifying or {}).get("action"),
            }
            key = json.dumps(line, sort_keys=True)
            if self._seen.get(f"verifying:{service}") != key:
                self._seen[f"verifying:{service}"] = key
                lines.append(line)
        if lines:
            with open(self.out, "a") as out:
                for line in lines:
                    out.write(json.dumps({"t": at, "seen": time.time(), **line}) + "\n")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.poll()


WORKING = frozenset({"open", "remediating", "failed"})


def proving(history: dict[str, Any]) -> dict[str, Any] | None:
    """The step being proven in a service's remediation record (``step`` in the issues
    file's schema 2, ``verifying`` in schema 1), or None."""
    step = history.get("step", history.get("verifying"))
    return step if isinstance(step, dict) else None


def settled(doc: dict[str, Any], service: str) -> bool:
    """The controller has no work left on the service: no drift it still means to fix or
    prove, no step being proven, no change under watch. An issue it handed to a person
    does not count: it will not act on it (a person's stop is the fault's own business,
    and the scheduler never runs two faults on one service)."""
    for issue in doc.get("issues", []):
        if issue["service"] != service:
            continue
        if issue["source"] == "drift" and issue["state"] in WORKING:
            return False
        if issue["state"] == "remediating":
            return False
    history = (doc.get("remediation") or {}).get(service) or {}
    return proving(history) is None and not under_watch(doc, service)


def under_watch(doc: dict[str, Any], service: str) -> bool:
    """A change of the service (a person's ``compose up``) is still in its verdict window:
    a fault now would be the change's in the controller's eyes, rightly (it cannot tell
    an injected crash from one the new config causes), so the next fault waits for the
    verdict, as an operator tests a change before breaking the service on purpose."""
    record = (doc.get("rollback") or {}).get(service) or {}
    change = record.get("change") if isinstance(record, dict) else None
    return isinstance(change, dict) and change.get("verdict") == "pending"


def drift_free(doc: dict[str, Any], service: str) -> bool:
    """No drift of the service the controller still means to fix."""
    return not any(
        i["service"] == service and i["source"] == "drift" and i["state"] in WORKING
        for i in doc.get("issues", [])
    )


class NoticeLog:
    """Stamps the receiver's messages with their arrival (polled every 0.1 s)."""

    def __init__(self, receiver: Receiver, out: Path) -> None:
        self.receiver = receiver
        self.out = out
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notices", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.1)

    def poll(self) -> None:
        messages = self.receiver.messages()
        fresh, self._count = messages[self._count :], len(messages)
        if fresh:
            now = time.time()
            with open(self.out, "a") as out:
                for message in fresh:
                    out.write(json.dumps({"t": now, **message}) + "\n")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.poll()


def fetch_alerts(base: str, start: float, end: float) -> list[dict[str, Any]]:
    """Every alert that fired between ``start`` and ``end``: its name, labels and the
    intervals it was firing (from Prometheus' ``ALERTS`` series)."""
    step = max(1, math.ceil((end - start) / 10000))
    query = urllib.parse.urlencode(
        {"query": 'ALERTS{alertstate="firing"}', "start": start, "end": end, "step": step}
    )
    code, body = http_get(f"{base}/api/v1/query_range?{query}")
    if code != 200:
        raise RuntimeError(f"Prometheus answered {code} to the ALERTS query: {body[:300]}")
    found: list[dict[str, Any]] = []
    for series in json.loads(body)["data"]["result"]:
        times = sorted(float(t) for t, _ in series["values"])
        intervals: list[list[float]] = []
        for t in times:
            if intervals and t - intervals[-1][1] <= step * 1.5:
                intervals[-1][1] = t
            else:
                intervals.append([t, t])
        labels = series["metric"]
        found.append(
            {
                "alertname": labels.get("alertname", ""),
                "service": labels.get("service", ""),
                "labels": labels,
                "intervals": intervals,
            }
        )
    return found
