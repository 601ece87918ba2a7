"""The soak's scorer on synthetic journals and documents: what counts as detected, missed,
a false action, a false page, a right, wrong or missing root-cause link, and the quiet
stretch. No engine: the evidence is written here as the recorders would have."""

from __future__ import annotations

import json
from pathlib import Path

from soak import evidence
from soak.catalog import spec
from soak.evidence import AlertFiring, Evidence, Notice, Snapshot
from soak.journal import Fault, Journal
from soak.score import score

T = 1_800_000_000.0


def fault(fid: str, kind: str, service: str, t0: float, **params: object) -> Fault:
    sp = spec(kind, service, dict(params))
    return Fault(
        fid,
        kind,
        service,
        dict(params),
        sp.expect,
        t0=t0,
        effect_at=t0,
        recovered_at=t0 + 2.0,
        settled_at=t0 + 5.0,
        person=sp.person,
        recovery_expected=sp.recovery,
    )


def snap(
    t: float,
    fingerprint: str,
    state: str = "open",
    *,
    iid: str = "",
    occurrences: int = 1,
    count: int = 1,
    last_seen: float | None = None,
    caused_by: tuple[str, ...] = (),
    category: str = "health",
    severity: str = "high",
    detail: str = "",
    attempts: tuple[tuple[str, float, str | None], ...] = (),
    resolution: str = "",
) -> Snapshot:
    source, service = fingerprint.split(":")[:2]
    return Snapshot(
        t,
        fingerprint,
        iid or fingerprint.replace(":", "")[:12].ljust(12, "0"),
        service,
        source,
        fingerprint.split(":")[2],
        category,
        severity,
        state,
        occurrences,
        count,
        last_seen if last_seen is not None else t,
        caused_by,
        detail,
        resolution,
        attempts,
    )


def problems(found, what: str) -> list[str]:
    return [p.detail for p in found.problems if p.what.startswith(what)]


def test_a_crash_seen_and_restarted_in_time_is_a_clean_score():
    crash = fault("f001", "crash", "api", T)
    restart = (("restart", T + 0.3, "success"),)
    ev = Evidence(
        faults=[crash],
        snapshots=[
            snap(T + 0.12, "drift:api:exited"),
            snap(T + 0.5, "drift:api:exited", "remediating", count=2, attempts=restart),
            snap(T + 9.0, "drift:api:exited", "resolved", count=2, attempts=restart),
        ],
    )
    found = score(ev)
    assert (found.recall, found.precision) == (1.0, 1.0)
    assert found.false_actions == found.false_pages == found.missed == 0
    assert abs(found.detect[0] - 0.12) < 1e-6
    assert abs(found.recover[0] - 2.0) < 1e-6
    assert found.per_fault[0]["actions"] == ["restart api"]


def test_the_controllers_log_line_times_an_opening_better_than_the_file():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[snap(T + 0.6, "drift:api:exited", iid="aaaaaaaaaaaa")],
        log_openings=[(T + 0.1, "aaaaaaaaaaaa")],
    )
    assert abs(score(ev).detect[0] - 0.1) < 1e-6


def test_an_issue_with_no_fault_behind_it_lowers_precision():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[
            snap(T + 0.1, "drift:api:exited"),
            snap(T + 1.0, "drift:agent:outdated", severity="low"),
        ],
    )
    found = score(ev)
    assert found.precision == 0.5
    (unbacked,) = problems(found, "issue with no fault")
    assert unbacked.startswith("drift:agent:outdated (low)")


def test_a_servers_reset_when_its_client_was_restarted_is_backed_only_when_low():
    # the controller restarts api (its probe fails): db logs "could not receive data from
    # client: Connection reset by peer". Low (a client leaving) is what a correct
    # controller opens; medium, a fault of db's that nothing injected
    probe = fault("f001", "probe-fail", "api", T)
    line = "LOG:  could not receive data from client: Connection reset by peer"
    for severity, unbacked in (("low", 0), ("medium", 1)):
        ev = Evidence(
            faults=[probe],
            snapshots=[
                snap(T + 0.1, "drift:api:probe-failed"),
                snap(T + 0.3, "log:db:conn-reset:1", category="connection", severity=severity,
                     detail=line),
            ],
        )  # fmt: skip
        assert len(problems(score(ev), "issue with no fault")) == unbacked, severity


def test_an_issue_long_after_its_fault_is_not_backed_by_it():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[
            snap(T + 0.1, "drift:api:exited", "resolved"),
            snap(T + 600, "drift:api:exited", occurrences=2),
        ],
    )
    assert len(problems(score(ev), "issue with no fault")) == 1


def test_a_fault_nobody_saw_is_missed_and_its_action_missing():
    found = score(Evidence(faults=[fault("f001", "health-hang", "edge", T)]))
    assert (found.recall, found.missed, found.missing_actions) == (0.0, 1, 1)
    assert found.per_fault[0]["detect"] is None


def test_counting_up_an_open_issue_detects_a_repeated_error():
    line = "log:api:jwt-expired:0123456789"
    ev = Evidence(
        faults=[fault("f002", "log", "api", T + 100, category="auth")],
        snapshots=[
            snap(T, line, category="auth", count=1, last_seen=T),
            snap(T + 100.2, line, category="auth", count=2, last_seen=T + 100.05),
        ],
    )
    found = score(ev)
    assert found.detected == 1 and abs(found.detect[0] - 0.2) < 1e-6


def test_a_restart_of_a_healthy_service_is_a_false_action():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[
            snap(T + 0.1, "drift:api:exited", attempts=(("restart", T + 0.2, "success"),)),
            snap(T + 1000, "drift:worker:exited", attempts=(("restart", T + 1000.1, None),)),
        ],
    )
    found = score(ev)
    assert found.false_actions == 1
    assert "on a healthy service" in problems(found, "false action")[0]


def test_a_restart_of_what_a_person_stopped_is_a_false_action_on_a_persons_service():
    stop = fault("f001", "person-stop", "reporter", T, seconds=20)
    ev = Evidence(
        faults=[stop],
        snapshots=[
            snap(T + 0.1, "drift:reporter:exited"),
            snap(
                T + 0.3,
                "drift:reporter:exited",
                "remediating",
                attempts=(("restart", T + 0.3, "success"),),
            ),
        ],
    )
    found = score(ev)
    assert found.false_actions == 1
    assert "on a person's service" in problems(found, "false action")[0]


def test_a_recreate_where_a_restart_was_due_is_a_false_action_not_expected():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[snap(T + 0.1, "drift:api:exited", attempts=(("recreate", T + 0.2, "success"),))],
    )
    found = score(ev)
    assert (found.false_actions, found.missing_actions) == (1, 1)
    assert "not expected for f001 crash api" in problems(found, "false action")[0]


def test_needs_human_is_a_page_only_when_no_fault_wants_a_human():
    ev = Evidence(
        faults=[
            fault("f001", "person-stop", "reporter", T, seconds=20),
            fault("f002", "crash", "api", T + 100),
        ],
        snapshots=[
            snap(T + 0.2, "drift:reporter:exited", "needs-human", resolution="stopped by a person"),
            snap(T + 100.1, "drift:api:exited"),
            snap(T + 101, "drift:api:exited", "needs-human", count=2, resolution="budget spent"),
        ],
    )
    found = score(ev)
    assert found.false_pages_by == {"needs-human": 1}
    assert "not expected for f002 crash" in problems(found, "false page")[0]


def test_alerts_are_pages_with_a_fault_behind_them_or_false():
    stop = fault("f001", "person-stop", "reporter", T, seconds=20)
    ev = Evidence(
        faults=[stop, fault("f002", "crash", "api", T + 100)],
        snapshots=[
            snap(T + 0.2, "drift:reporter:exited", "needs-human"),
            snap(T + 100.1, "drift:api:exited", severity="critical"),
        ],
        alerts=[
            AlertFiring("ComposeServiceNeedsHuman", "reporter", T + 61, T + 70),
            AlertFiring("ComposeCriticalIssueOpen", "api", T + 131, T + 140),
            AlertFiring("ComposeServiceNeedsHuman", "agent", T + 61, T + 70),
            AlertFiring("ComposeServiceFlapping", "api", T + 200, T + 300),
            AlertFiring("ComposeServiceFlapping", "ticker", T + 200, T + 300),
            AlertFiring("ComposeControllerDown", "", T + 400, T + 460),
        ],
    )
    found = score(ev)
    assert found.false_pages_by == {"alert": 3}
    pages = problems(found, "false page")
    assert any("ComposeServiceNeedsHuman" in p for p in pages)
    assert any("ComposeServiceFlapping" in p for p in pages)
    assert any("ComposeControllerDown" in p for p in pages)


def test_a_notification_about_an_issue_no_fault_explains_is_a_false_page():
    ev = Evidence(
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[
            snap(T + 0.1, "drift:api:exited", iid="aaaaaaaaaaaa"),
            snap(T + 50, "drift:agent:outdated", "needs-human", iid="bbbbbbbbbbbb"),
        ],
        notices=[
            Notice(T + 10.2, "api", "opened", "aaaaaaaaaaaa", "api exited with code 137"),
            Notice(T + 60.2, "agent", "needs-human", "bbbbbbbbbbbb", "agent outdated"),
        ],
    )
    found = score(ev)
    assert found.false_pages_by == {"needs-human": 1, "notification": 1}


def test_root_cause_links_right_wrong_and_missing():
    outage = fault("f002", "dependency-stop", "db", T + 100, seconds=20, foreign=True)
    outage.ended_at = T + 120
    stale = "log:worker:db-deadlock:0123456789"
    foreign = "log:api:dns-failure:0123456789"
    ev = Evidence(
        faults=[fault("f001", "log", "worker", T, category="database"), outage],
        snapshots=[
            snap(T + 0.1, stale, category="database", last_seen=T),
            snap(T + 100.2, "drift:db:exited", "needs-human", iid="dbdbdbdbdbdb"),
            # the deadlock logged before the outage, linked to it: wrong (no evidence)
            snap(T + 100.3, stale, category="database", last_seen=T, caused_by=("dbdbdbdbdbdb",)),
            # the api's healthcheck failing because db is down: linked, right
            snap(T + 106, "drift:api:unhealthy", caused_by=("dbdbdbdbdbdb",)),
            # an error naming payments.internal, no service: linked, wrong
            snap(
                T + 104,
                foreign,
                category="connection",
                detail="Failed to resolve 'payments.internal'",
                caused_by=("dbdbdbdbdbdb",),
            ),
            # the worker's connection refused to db, never linked while db was down: missing
            snap(T + 101, "log:worker:conn-refused:0123456789", category="connection"),
            snap(T + 130, "drift:db:exited", "resolved", iid="dbdbdbdbdbdb"),
        ],
    )
    found = score(ev)
    assert (found.links_right, found.links_wrong, found.links_missing) == (1, 2, 1)
    wrong = problems(found, "wrong link")
    assert any(stale in w and "expected no link (f001 log)" in w for w in wrong)
    assert any(foreign in w for w in wrong)
    assert "log:worker:conn-refused" in problems(found, "missing link")[0]
    assert found.false_pages == 0  # db's needs-human: a person stopped it


def test_the_quiet_stretch_counts_everything_that_happened_in_it():
    ev = Evidence(
        phases={"quiet": (T - 200, T - 10), "faults": (T - 10, T + 100)},
        faults=[fault("f001", "crash", "api", T)],
        snapshots=[
            snap(
                T - 150,
                "drift:agent:outdated",
                "needs-human",
                iid="bbbbbbbbbbbb",
                attempts=(("recreate", T - 149, "success"),),
            ),
            snap(T + 0.1, "drift:api:exited"),
        ],
        notices=[Notice(T - 140, "agent", "opened", "bbbbbbbbbbbb", "outdated")],
        alerts=[AlertFiring("ComposeServiceNeedsHuman", "agent", T - 80, T + 50)],
    )
    found = score(ev)
    assert found.quiet == {"issues": 1, "actions": 1, "notifications": 1, "alerts": 1}


def test_a_run_directory_is_read_back_as_the_recorders_wrote_it(tmp_path: Path):
    journal = Journal(tmp_path / "journal.jsonl")
    crash = fault("f001", "crash", "api", T)
    journal.injected(crash)
    journal.done(crash)
    journal.phase("quiet", T - 200, T - 1)
    lines = [
        {
            "t": T + 0.4,
            "type": "issue",
            "fingerprint": "drift:api:exited",
            "id": "aaaaaaaaaaaa",
            "service": "api",
            "source": "drift",
            "kind": "exited",
            "category": "health",
            "severity": "high",
            "state": "open",
            "occurrences": 1,
            "count": 1,
            "last_seen": T + 0.4,
            "caused_by": [],
            "detail": "exit code 137",
            "attempts": [["restart", T + 0.5, None, ""]],
        },
        {"t": T + 0.4, "type": "verifying", "service": "api", "verifying": True},
    ]
    (tmp_path / "timeline.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    log = {
        "text": "",
        "record": {
            "message": "api: drift: api exited with code 137 [high exited] issue aaaaaaaaaaaa",
            "time": {"timestamp": T + 0.11},
        },
    }
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "controller.log").write_text(json.dumps(log) + "\nnot json\n")
    note = {
        "t": T + 10.5,
        "title": "[soak] api: opened: api exited with code 137",
        "message": "opened [high] api exited with code 137 (issue aaaaaaaaaaaa)\n  exit",
        "type": "failure",
    }
    (tmp_path / "notifications.jsonl").write_text(json.dumps(note) + "\n")
    (tmp_path / "alerts.json").write_text(
        json.dumps(
            [
                {
                    "alertname": "ComposeCriticalIssueOpen",
                    "service": "api",
                    "labels": {},
                    "intervals": [[T + 40, T + 41]],
                }
            ]
        )
    )
    ev = evidence.load(tmp_path)
    assert [f.id for f in ev.faults] == ["f001"] and ev.faults[0].expect == crash.expect
    assert ev.notices == [
        Notice(T + 10.5, "api", "opened", "aaaaaaaaaaaa", "api exited with code 137")
    ]
    found = score(ev)
    assert abs(found.detect[0] - 0.11) < 1e-6
    assert found.backed_steps == 1 and found.false_pages_by == {"alert": 1}


def test_a_healthcheck_that_failed_on_its_own_backs_only_a_failing_healthcheck_issue():
    ev = Evidence(
        phases={"quiet": (T - 100, T + 500)},
        spontaneous=[(T, "api"), (T + 300, "db")],
        snapshots=[
            Snapshot(
                T + 0.1,
                "drift:api:unhealthy",
                "a" * 12,
                "api",
                "drift",
                "failing-healthcheck",
                "health",
                "medium",
                "open",
                1,
                1,
                T + 0.1,
                (),
            ),
            Snapshot(
                T + 300.1,
                "drift:db:unhealthy",
                "b" * 12,
                "db",
                "drift",
                "healthcheck-stalled",
                "health",
                "medium",
                "open",
                1,
                1,
                T + 300.1,
                (),
            ),
        ],
    )
    found = score(ev)
    assert found.spontaneous == 2 and found.faults == 0
    assert found.quiet["issues"] == 1  # the stall is not explained by a failed check
    (unbacked,) = problems(found, "issue with no fault")
    assert unbacked.startswith("drift:db:unhealthy")


def test_a_crash_loop_called_fixed_before_it_ended_is_a_false_verdict():
    loop = fault("f001", "crash-loop", "reporter", T, seconds=3, **{"for": 40})
    loop.ended_at = T + 40
    restart = (("restart", T + 0.2, "success"),)
    ev = Evidence(
        faults=[loop],
        snapshots=[
            snap(T + 0.1, "drift:reporter:exited"),
            snap(
                T + 5.5,
                "drift:reporter:exited",
                "resolved",
                attempts=restart,
                resolution="fixed by restart: ready for 2 s",
            ),
            snap(T + 8.0, "drift:reporter:exited", occurrences=2, attempts=restart),
            snap(
                T + 60.0,
                "drift:reporter:exited",
                "resolved",
                occurrences=2,
                attempts=restart,
                resolution="fixed by restart",
            ),
        ],
    )
    found = score(ev)
    assert found.fixed_early == 1
    (early,) = problems(found, "fixed while still failing")
    assert "ready for 2 s" in early and "(34 s before the loop ended)" in early


def test_a_repeated_error_is_detected_by_what_its_issue_said_then():
    """conn-refused hashes only "Connection refused": a service's refused connections are
    one issue, whose detail is its newest line; a line naming payments.internal is seen
    when the issue said so, whatever it says at the end."""
    issue = "log:worker:conn-refused:25a8438214"
    ev = Evidence(
        faults=[fault("f002", "log", "worker", T + 100, category="connection")],
        snapshots=[
            snap(T, issue, category="connection", detail="port 5432 failed: Connection refused"),
            snap(
                T + 100.3,
                issue,
                category="connection",
                count=2,
                last_seen=T + 100.1,
                detail="HTTPConnectionPool(host='payments.internal' ... Connection refused",
            ),
            snap(
                T + 200,
                issue,
                category="connection",
                count=3,
                last_seen=T + 199,
                detail="port 5432 failed: Connection refused",
            ),
        ],
    )
    found = score(ev)
    assert found.missed == 0 and abs(found.detect[0] - 0.3) < 1e-6


def test_a_service_whose_change_is_under_watch_is_not_settled_for_the_next_fault():
    from soak.recorder import settled

    calm: dict[str, object] = {"issues": [], "remediation": {}, "rollback": {}}
    assert settled(calm, "reporter")
    watched = {**calm, "rollback": {"reporter": {"change": {"verdict": "pending"}}}}
    assert not settled(watched, "reporter") and settled(watched, "api")
    judged = {**calm, "rollback": {"reporter": {"change": {"verdict": "good"}}}}
    assert settled(judged, "reporter")
