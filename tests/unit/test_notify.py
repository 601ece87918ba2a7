"""Notifications: transitions worked out from snapshots of the issues, grouped and
rate-limited per service, redacted, and delivered to a real local webhook through
Apprise without ever holding up the caller."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from controller.desired import DesiredStateError, load_desired
from controller.model import (
    Category,
    Issue,
    IssueState,
    NotifyEvent,
    NotifySettings,
    Severity,
    issue_id,
    to_datetime,
)
from controller.notify import Notifier
from controller.notify.message import render
from controller.notify.outbox import MAX_WAITING, Batch, Outbox
from controller.notify.transitions import Tracker, Transition
from tests.receiver import Receiver

T0 = 1_800_000_000.0


def wait_for(predicate, timeout: float, what: str):
    """Poll until ``predicate`` is truthy (delivery runs on its own thread)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


SETTINGS = NotifySettings(urls=("json://127.0.0.1:1",), min_severity=Severity.HIGH)


def issue(
    service: str = "web",
    kind: str = "exited",
    *,
    state: IssueState = IssueState.OPEN,
    severity: Severity = Severity.HIGH,
    opened: float = T0 + 10,
    **fields: object,
) -> Issue:
    fingerprint = f"drift:{service}:{kind}"
    return Issue(
        id=issue_id(fingerprint),
        fingerprint=fingerprint,
        env="dev",
        service=service,
        kind=kind,
        category=Category.HEALTH,
        severity=severity,
        state=state,
        title=f"{service} {kind}",
        first_seen=to_datetime(opened),
        last_seen=to_datetime(opened),
        opened_at=to_datetime(opened),
        **fields,
    )


def events(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.service, str(t.event)) for t in transitions]


# --- transitions -------------------------------------------------------------------------


def test_an_issue_is_told_when_it_opens_needs_a_human_and_resolves():
    tracker = Tracker(SETTINGS, to_datetime(T0))
    assert events(tracker.update([issue()])) == [("web", "opened")]
    assert tracker.update([issue(state=IssueState.REMEDIATING)]) == []
    needs = tracker.update([issue(state=IssueState.NEEDS_HUMAN, resolution="budget spent")])
    assert events(needs) == [("web", "needs-human")]
    assert needs[0].detail == "budget spent"
    done = tracker.update([issue(state=IssueState.RESOLVED, resolution="fixed by restart")])
    assert events(done) == [("web", "resolved")] and done[0].detail == "fixed by restart"
    reopened = tracker.update([issue(occurrences=2)])
    assert events(reopened) == [("web", "opened")] and reopened[0].occurrence == 2


def test_an_issue_below_the_minimum_severity_is_never_told_not_even_resolved():
    tracker = Tracker(SETTINGS, to_datetime(T0))
    assert tracker.update([issue(severity=Severity.LOW)]) == []
    assert tracker.update([issue(severity=Severity.LOW, state=IssueState.NEEDS_HUMAN)]) == []
    assert tracker.update([issue(severity=Severity.LOW, state=IssueState.RESOLVED)]) == []


def test_an_escalation_across_the_minimum_is_told_and_so_is_its_resolution():
    tracker = Tracker(SETTINGS, to_datetime(T0))
    assert tracker.update([issue("api", "log", severity=Severity.MEDIUM)]) == []
    up = tracker.update([issue("api", "log", severity=Severity.HIGH, escalated_from="medium")])
    assert events(up) == [("api", "escalated")]
    assert up[0].detail.startswith("severity medium -> high")
    down = tracker.update([issue("api", "log", state=IssueState.RESOLVED)])
    assert events(down) == [("api", "resolved")]


def test_only_the_events_asked_for_are_told():
    only = replace(SETTINGS, events=frozenset({NotifyEvent.NEEDS_HUMAN}))
    tracker = Tracker(only, to_datetime(T0))
    assert tracker.update([issue()]) == []
    assert events(tracker.update([issue(state=IssueState.NEEDS_HUMAN)])) == [("web", "needs-human")]


def test_an_issue_opened_straight_into_needs_human_is_two_transitions():
    tracker = Tracker(SETTINGS, to_datetime(T0))
    told = tracker.update([issue(state=IssueState.NEEDS_HUMAN)])
    assert events(told) == [("web", "opened"), ("web", "needs-human")]


def test_issues_from_before_the_start_are_a_baseline_not_news():
    tracker = Tracker(SETTINGS, to_datetime(T0))
    old = issue("db", opened=T0 - 60)
    assert events(tracker.update([old, issue("web")])) == [("web", "opened")]
    # an old issue counts as told (by the earlier run): its resolution is news
    assert events(tracker.update([issue("db", opened=T0 - 60, state=IssueState.RESOLVED)])) == [
        ("db", "resolved")
    ]


# --- grouping and rate ---------------------------------------------------------------------


def transition(service: str = "web", event: NotifyEvent = NotifyEvent.OPENED) -> Transition:
    return Transition(event, service, "abc123", Severity.HIGH, f"{service} exited", "")


def test_a_services_transitions_within_the_window_are_one_batch():
    box = Outbox(group_seconds=10, max_per_hour=12)
    box.add(transition(), T0)
    box.add(transition(event=NotifyEvent.RESOLVED), T0 + 4)
    box.add(transition("db"), T0 + 5)
    assert box.due(T0 + 9) == []
    assert box.next_due(T0 + 9) == pytest.approx(1)
    (web,) = box.due(T0 + 10)
    assert web.service == "web" and len(web.transitions) == 2
    (db,) = box.due(T0 + 15)
    assert db.service == "db"
    assert box.next_due(T0 + 15) is None


def test_a_service_over_its_rate_waits_and_is_grouped_not_lost():
    box = Outbox(group_seconds=0, max_per_hour=2)
    sent = []
    for i in range(5):
        box.add(transition(), T0 + i)
        sent += box.due(T0 + i)
    assert len(sent) == 2  # the bucket is empty: the other three wait together
    wait = box.next_due(T0 + 4)
    assert wait is not None and 1700 < wait <= 1800  # a token every half hour
    (late,) = box.due(T0 + 4 + wait)
    assert len(late.transitions) == 3


def test_what_waits_per_service_is_bounded():
    box = Outbox(group_seconds=60, max_per_hour=1)
    dropped = []
    for i in range(MAX_WAITING + 5):
        dropped += box.add(transition(), T0 + i)
    assert len(dropped) == 5
    (batch,) = box.drain()
    assert len(batch.transitions) == MAX_WAITING


# --- the message ---------------------------------------------------------------------------


def test_a_message_names_env_service_and_events_and_is_redacted():
    items = (
        Transition(
            NotifyEvent.OPENED,
            "backend",
            "e6c38aabe127",
            Severity.CRITICAL,
            "backend cannot connect: postgresql://app:hunter2@127.0.0.1/app",
            "FATAL password=hunter2 rejected",
        ),
        Transition(NotifyEvent.RESOLVED, "backend", "0123456789ab", Severity.HIGH, "x", "ok"),
    )
    message = render(Batch("backend", items), "dev")
    assert message.title.startswith("[dev] backend: 2 changes (1 opened, 1 resolved)")
    assert "e6c38aabe127" in message.body and "[critical]" in message.body
    assert "hunter2" not in message.title + message.body
    assert message.kind == "failure"
    assert render(Batch("backend", items[1:]), "dev").kind == "success"


# --- delivery ------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def counting() -> tuple[dict[tuple[str, str], int], object]:
    counts: dict[tuple[str, str], int] = {}

    def count(event: str, result: str) -> None:
        counts[(event, result)] = counts.get((event, result), 0) + 1

    return counts, count


def test_a_transition_reaches_a_real_webhook_through_apprise(receiver):
    counts, count = counting()
    settings = NotifySettings(
        urls=(f"json://127.0.0.1:{receiver.port}/hook",), group_seconds=0, timeout=5
    )
    notifier = Notifier(settings, "dev", count, lambda seconds: None, lambda: T0)
    notifier.observe([issue("backend", detail="exit code 137, token=s3cr3t-value")])
    (message,) = wait_for(receiver.messages, 30, "the webhook to receive the message")
    notifier.close()
    assert message["title"] == "[dev] backend: opened: backend exited"
    assert "exit code 137" in message["message"] and "s3cr3t-value" not in message["message"]
    assert message["type"] == "failure"
    assert receiver.paths == ["/hook"]
    assert counts == {("opened", "sent"): 1}


def test_a_slow_endpoint_never_holds_up_the_caller_and_is_counted_as_failed(receiver):
    counts, count = counting()
    receiver.hold.clear()  # the endpoint takes every request and answers nothing
    settings = NotifySettings(
        urls=(f"json://127.0.0.1:{receiver.port}",), group_seconds=0, timeout=1
    )
    notifier = Notifier(settings, "dev", count, lambda seconds: None, lambda: T0)
    notifier.observe([issue("backend")])
    wait_for(receiver.arrived.is_set, 30, "the request to arrive")
    # the delivery is stuck in the endpoint; the caller goes on observing
    notifier.observe([issue("backend", state=IssueState.NEEDS_HUMAN)])
    assert not receiver.messages()
    wait_for(lambda: counts.get(("opened", "failed")), 60, "the timeout to be counted")
    receiver.hold.set()
    notifier.close()
    assert counts.get(("needs-human", "failed")) == 1 or counts.get(("needs-human", "sent")) == 1


def test_a_refusing_endpoint_is_counted_as_failed():
    refusing = Receiver(status=500)
    try:
        counts, count = counting()
        settings = NotifySettings(
            urls=(f"json://127.0.0.1:{refusing.port}",), group_seconds=0, timeout=5
        )
        notifier = Notifier(settings, "dev", count, lambda seconds: None, lambda: T0)
        notifier.observe([issue()])
        wait_for(lambda: counts.get(("opened", "failed")), 30, "the failure to be counted")
        notifier.close()
    finally:
        refusing.close()


def test_close_sends_what_still_waits_for_its_group(receiver):
    settings = NotifySettings(
        urls=(f"json://127.0.0.1:{receiver.port}",), group_seconds=3600, timeout=5
    )
    notifier = Notifier(
        settings, "dev", lambda event, result: None, lambda seconds: None, lambda: T0
    )
    notifier.observe([issue("web"), issue("db")])
    notifier.close(30)
    assert sorted(m["title"].split(":")[0] for m in receiver.messages()) == [
        "[dev] db",
        "[dev] web",
    ]


def test_without_urls_nothing_runs():
    notifier = Notifier(
        NotifySettings(), "dev", lambda event, result: None, lambda seconds: None, time.time
    )
    notifier.observe([issue()])
    notifier.close()
    assert not notifier.enabled


# --- the desired state ---------------------------------------------------------------------


def load(tmp_path: Path, notify: str):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / "dev.yaml").write_text(
        f"project: demo\ncompose_files: [compose.yaml]\nnotify:\n{notify}"
    )
    return load_desired(
        "dev", tmp_path, lambda project: {"services": {"web": {"image": "x"}}}, environ={}
    )


def test_the_notify_section_becomes_settings(tmp_path: Path):
    desired = load(
        tmp_path,
        "  urls: ['json://127.0.0.1:18555/hook', 'ntfy://ntfy.example/alerts']\n"
        "  events: [opened, resolved]\n  min_severity: critical\n  group_seconds: 0\n",
    )
    assert desired.notify.urls == ("json://127.0.0.1:18555/hook", "ntfy://ntfy.example/alerts")
    assert desired.notify.events == {NotifyEvent.OPENED, NotifyEvent.RESOLVED}
    assert desired.notify.min_severity is Severity.CRITICAL
    assert desired.notify.group_seconds == 0


def test_a_url_apprise_cannot_send_to_is_a_problem_with_its_line_and_no_secret(tmp_path: Path):
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, "  urls:\n    - json://127.0.0.1:1\n    - nosuch://user:topsecret@host\n")
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{tmp_path / 'dev.yaml'}:6: notify.urls.1: not a URL")
    assert "topsecret" not in str(problem) and "nosuch://***:***@***" in str(problem)


def test_an_unknown_event_is_a_problem(tmp_path: Path):
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, "  urls: ['json://127.0.0.1:1']\n  events: [opened, exploded]\n")
    assert "notify.events.1" in str(caught.value)


def test_timestamps_in_the_past_are_not_news_relative_to_now():
    # guards the baseline rule against naive datetimes sneaking in
    started = to_datetime(T0)
    assert issue(opened=T0 - 1).opened_at < started < started + timedelta(seconds=1)
