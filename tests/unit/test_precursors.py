"""Precursors learned from history: templates counted before and without incidents, the
warnings ``learn: warn`` opens, their promotion to patterns, ``controller patterns``."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from controller.detect.detector import Detector
from controller.detect.fingerprint import mask_variables
from controller.detect.library import PatternSpec, build_patterns, check_pattern
from controller.foresight.learning import Learning
from controller.issues.store import IssueStore, SyncResult
from controller.model import (
    Category,
    DetectionSettings,
    Drift,
    DriftKind,
    Finding,
    FindingKind,
    IssueSource,
    IssueState,
    LearnMode,
    LearnSettings,
    LogLine,
    Outcome,
    Severity,
    Sighting,
    to_datetime,
)
from controller.predict.precursors import Learner
from controller.predict.promote import as_yaml, promoted, template_regex
from controller.status.patterns import patterns_command, render
from tests.fakes import FakeClock

LOOKBACK = 60.0
SETTINGS = LearnSettings(mode=LearnMode.REPORT, lookback=LOOKBACK, min_incidents=3)
NOVEL = "FATAL: flux regulator desynchronised (code <n>)"
HEALTHY = "ERROR cache refresh took <n> ms"


def sight(learner: Learner, text: str, at: float, service: str = "web"):  # type: ignore[no-untyped-def]
    return learner.sighted(service, f"unclassified:{text[:6]}", "unclassified", text, text, at)


def crash_cycle(learner: Learner, start: float, *, healthy_noise: bool) -> float:
    """The novel line 20 s before a crash; the healthy one before it too, and also
    (``healthy_noise``) twice in the healthy minutes after."""
    sight(learner, NOVEL, start)
    sight(learner, HEALTHY, start + 1)
    learner.incident("web", "crash", start + 20)
    if healthy_noise:
        sight(learner, HEALTHY, start + 200)
        sight(learner, HEALTHY, start + 400)
    learner.settle(start + 500)
    return start + 600


def test_a_line_before_three_crashes_is_learned_and_one_also_seen_when_healthy_is_not():
    learner, t = Learner(SETTINGS), 1_800_000_000.0
    for n in range(3):
        t = crash_cycle(learner, t, healthy_noise=True)
        learned = {x.text for x in learner.learned()}
        assert (NOVEL in learned) is (n == 2)  # after the third incident, not before
    assert HEALTHY not in {x.text for x in learner.learned()}
    (novel,) = [x for x in learner.templates() if x.text == NOVEL]
    assert [p.what for p in novel.incidents] == ["crash"] * 3
    assert {p.lead for p in novel.incidents} == {20.0}
    assert (novel.before, novel.otherwise) == (3, 0)
    (healthy,) = [x for x in learner.templates() if x.text == HEALTHY]
    assert (healthy.before, healthy.otherwise) == (3, 6) and len(healthy.incidents) == 3


def test_a_flood_is_one_sighting_and_a_line_read_after_its_incident_still_counts():
    learner, t = Learner(SETTINGS), 1_800_000_000.0
    for n in range(50):  # a flood within a tenth of the lookback
        sight(learner, NOVEL, t + n * 0.1)
    (template,) = learner.templates()
    assert template.sightings == 1
    learner.incident("web", "OOM kill", t + 30)
    sight(learner, NOVEL, t + 25)  # printed before the kill, read after the pass saw it
    assert template.before == 2 and len(template.incidents) == 1


def test_a_flood_a_crash_cuts_in_two_is_two_sightings():
    learner, t = Learner(SETTINGS), 1_800_000_000.0
    sight(learner, HEALTHY, t)
    learner.incident("web", "crash", t + 1)
    sight(learner, HEALTHY, t + 2)  # within a tenth of the lookback, but after the crash
    learner.settle(t + 100)
    (template,) = learner.templates()
    assert (template.sightings, template.before, template.otherwise) == (2, 1, 1)


def test_another_services_incident_is_not_this_ones():
    learner, t = Learner(SETTINGS), 1_800_000_000.0
    sight(learner, NOVEL, t, service="web")
    learner.incident("db", "crash", t + 10)
    learner.settle(t + 100)
    (template,) = learner.templates()
    assert (template.before, template.otherwise, template.incidents) == (0, 1, [])


def test_the_learner_survives_a_dump_and_a_load():
    learner, t = Learner(SETTINGS), 1_800_000_000.0
    for _ in range(3):
        t = crash_cycle(learner, t, healthy_noise=False)
    again = Learner(SETTINGS)
    again.load(json.loads(json.dumps(learner.dump())))
    assert [x.text for x in again.learned()] == [x.text for x in learner.learned()]
    assert again.dump() == learner.dump()


def test_the_detector_sights_every_error_like_record_before_any_threshold():
    detector = Detector(DetectionSettings(patterns=build_patterns(), discovery_min_occurrences=3))
    line = "2026-12-04 10:00:00 FATAL: flux regulator desynchronised (code 7731)"
    findings = detector.feed([LogLine("web", "demo-web-1", 1_800_000_000_000_000_000, line)], 0.0)
    findings += detector.flush(10.0)
    assert findings == []  # one sighting: no unclassified finding yet
    (sighting,) = detector.take_sightings()
    assert sighting.key.startswith("unclassified:") and sighting.pattern_id == "unclassified"
    assert sighting.container == "demo-web-1" and "flux regulator" in sighting.line
    assert detector.take_sightings() == []


def seen(text: str, at: float) -> Sighting:
    return Sighting("web", "demo-web-1", "unclassified:abc", "unclassified", text, text, at)


def warn_rig(
    mode: LearnMode = LearnMode.WARN,
) -> tuple[Learning, IssueStore, FakeClock, list[SyncResult]]:
    clock = FakeClock()
    store = IssueStore("dev", clock)
    changes: list[SyncResult] = []
    learn = replace(SETTINGS, mode=mode)
    learning = Learning(
        detection=DetectionSettings(learn=learn), store=store, clock=clock, on_change=changes.append
    )
    return learning, store, clock, changes


def crashed(store: IssueStore, clock: FakeClock) -> SyncResult:
    """The crash as a pass records it (a drift issue that opened or came back), and then
    fixed, so that the next crash is the issue's next occurrence."""
    drift = Drift("web", DriftKind.EXITED, Severity.HIGH, Category.HEALTH, "web exited with code 1")
    result = store.sync_drifts([drift], [])
    store.finish([drift.fingerprint], Outcome.SUCCESS, "", next_state=IssueState.RESOLVED)
    return result


def test_with_learn_warn_the_fourth_appearance_opens_a_warning_that_the_crash_proves(tmp_path):
    learning, store, clock, changes = warn_rig()
    for _ in range(3):
        learning.sightings([seen(NOVEL, clock.now)])
        clock.advance(20)
        learning.incidents(crashed(store, clock), ())
        clock.advance(200)
        learning.settle()
    assert [i for i in store.issues() if i.kind is FindingKind.PRECURSOR] == []
    assert learning.learned_counts() == {"web": 1}

    learning.sightings([seen(NOVEL, clock.now)])  # the fourth appearance
    (warning,) = [i for i in store.issues() if i.kind is FindingKind.PRECURSOR]
    assert [i.fingerprint for i in changes[-1].opened] == [warning.fingerprint]  # told at once
    assert warning.state is IssueState.OPEN and warning.source is IssueSource.PREDICT
    assert warning.category is Category.PREDICTED and warning.blocking is False
    assert warning.title == "web printed what came before 3 of its incidents (crash)"
    assert "about 20 s before them typically" in warning.hint
    clock.advance(15)
    learning.incidents(crashed(store, clock), ())
    warning = store.get(warning.fingerprint)
    assert warning.state is IssueState.RESOLVED
    assert warning.resolution == "came true: crash of web about 15 s after it"


def test_a_flood_of_a_learned_precursor_escalates_it_but_never_blocks_convergence():
    learning, store, clock, _ = warn_rig()
    for _ in range(3):
        learning.sightings([seen(NOVEL, clock.now)])
        clock.advance(20)
        learning.incidents(crashed(store, clock), ())
        clock.advance(200)
    for _ in range(12):
        learning.sightings([seen(NOVEL, clock.now)])
        clock.advance(0.5)
    (warning,) = [i for i in store.issues() if i.kind is FindingKind.PRECURSOR]
    assert warning.severity is Severity.CRITICAL and warning.blocking is False
    clock.advance(10)
    learning.incidents(crashed(store, clock), ())
    came = store.get(warning.fingerprint)
    assert came.resolution == "came true: crash of web about 16 s after it"  # the first


def test_a_warning_no_incident_follows_resolves_after_the_lookback():
    learning, store, clock, _ = warn_rig()
    for _ in range(3):
        learning.sightings([seen(NOVEL, clock.now)])
        clock.advance(20)
        learning.incidents(crashed(store, clock), ())
        clock.advance(200)
    learning.sightings([seen(NOVEL, clock.now)])
    clock.advance(LOOKBACK + 1)
    learning.settle()
    (warning,) = [i for i in store.issues() if i.kind is FindingKind.PRECURSOR]
    assert warning.state is IssueState.RESOLVED
    assert warning.resolution == "no incident of web followed within 60 s"


def test_with_learn_report_nothing_is_opened_and_with_off_nothing_is_learned():
    for mode, learned in ((LearnMode.REPORT, {"web": 1}), (LearnMode.OFF, {})):
        learning, store, clock, _ = warn_rig(mode)
        for _ in range(4):
            learning.sightings([seen(NOVEL, clock.now)])
            clock.advance(20)
            learning.incidents(crashed(store, clock), ())
            clock.advance(200)
        assert learning.learned_counts() == learned
        assert [i for i in store.issues() if i.kind is FindingKind.PRECURSOR] == []


def test_a_promoted_template_is_a_valid_pattern_that_matches_its_line():
    line = "2026-12-04 11:02:03.123 FATAL: flux regulator desynchronised (code 7731) on shard 0x1f"
    learner = Learner(SETTINGS)
    template = learner.sighted(
        "web", "unclassified:x", "unclassified", mask_variables(line), line, 0.0
    )
    spec = promoted(template, 3)
    assert spec["id"] == "web-fatal-flux-regulator-desynchronised-code"
    assert spec["regex"].startswith("FATAL:[ \\t]+flux")
    check_pattern(PatternSpec.model_validate(spec))  # as the desired-state loader checks it
    assert "id: web-fatal-flux-regulator-desynchronised-code" in as_yaml(spec)
    assert template_regex("x <*> (y)") == "x[ \\t]+[A-Za-z0-9_.:/@=,'-]+[ \\t]+\\(y\\)"


def document(learning: Learning) -> dict:  # type: ignore[type-arg]
    return {
        "env": "dev",
        "services": [],
        "learned": learning.summary(),
        "remediation": {"web": {"ladder": {"learned": {"drift:web:exited": "restart"}}}},
    }


def test_controller_patterns_shows_the_evidence_how_to_promote_and_what_fixed_what(tmp_path):
    learning, store, clock, _ = warn_rig(LearnMode.REPORT)
    line = "FATAL: flux regulator desynchronised (code 7731)"
    for _ in range(3):
        learning.sightings([seen(line, clock.now)])
        clock.advance(20)
        learning.incidents(crashed(store, clock), ())
        clock.advance(200)
    text = render(document(learning))
    assert text.startswith("Precursors learned from the history of dev (learn: report")
    assert "web: LEARNED  unclassified:abc" in text
    assert "20 s after it" in text
    assert "with `detection.learn.mode: warn` its next appearance would open a warning" in text
    assert "promote it: add this under detection.patterns in desired_state/dev.yaml" in text
    assert "    - id: web-fatal-flux-regulator-desynchronised-code" in text
    assert "  web: drift:web:exited -> fixed by restart" in text
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(document(learning)))
    out = io.StringIO()
    assert patterns_command(["--file", str(path)], out=out, environ={}) == 0
    assert out.getvalue().strip() == text
    assert patterns_command(["--file", str(tmp_path / "none.json")], out=out, environ={}) == 1


def test_an_incident_is_counted_once_when_a_crash_is_both_an_exit_and_a_restart():
    learning, store, clock, _ = warn_rig(LearnMode.REPORT)
    learning.sightings([seen(NOVEL, clock.now)])
    clock.advance(10)
    restart = Finding(
        "web",
        "demo-web-1",
        clock.now,
        FindingKind.RESTART,
        "docker-restart",
        Category.HEALTH,
        Severity.HIGH,
        "restarted",
        "engine:web:docker-restart",
        "",
        source=IssueSource.ENGINE,
    )
    learning.incidents(crashed(store, clock), (restart,))
    (entry,) = learning.summary()["precursors"]
    assert len(entry["incidents"]) == 1
    assert to_datetime(entry["incidents"][0]["at"]).timestamp() == clock.now


def test_a_change_judged_bad_is_an_incident_a_warning_comes_true_on():
    learning, store, clock, _ = warn_rig()
    for _ in range(3):
        learning.sightings([seen(NOVEL, clock.now)])
        clock.advance(20)
        learning.incidents(SyncResult(), (), [("web", clock.now)])  # what a rollback reverts
        clock.advance(200)
        learning.settle()
    assert learning.learned_counts() == {"web": 1}
    learning.sightings([seen(NOVEL, clock.now)])
    (warning,) = [i for i in store.issues() if i.kind is FindingKind.PRECURSOR]
    assert warning.title == "web printed what came before 3 of its incidents (bad change)"
    clock.advance(12)
    learning.incidents(SyncResult(), (), [("web", clock.now)])
    warning = store.get(warning.fingerprint)
    assert warning.resolution == "came true: bad change of web about 12 s after it"


def test_a_change_judged_bad_for_its_crash_is_that_crash_one_incident():
    learning, store, clock, _ = warn_rig(LearnMode.REPORT)
    learning.sightings([seen(NOVEL, clock.now)])
    clock.advance(10)
    learning.incidents(crashed(store, clock), (), [("web", clock.now + 1)])
    (entry,) = learning.summary()["precursors"]
    assert [i["what"] for i in entry["incidents"]] == ["crash"]
