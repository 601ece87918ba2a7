"""Seeing it coming, on real processes under real limits: a leak forecast well before its
OOM kill, a garbage collector's saw-tooth never forecast, a volume filling toward its
declared size forecast before it is full; a novel error line printed before each of three
crashes learned, its fourth appearance a warning before the crash, a line also printed in
healthy times never learned. Assertions are about order and outcomes (how much room was
left when the forecast came, in the process's own terms), never about wall-clock figures.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import STACKS, metric, wait_for

MIB = 1024 * 1024
FORESIGHT = STACKS / "foresight.yaml"
SAMPLING = "predict: {sample_seconds: 5, min_history_seconds: 60, window_seconds: 600}\n"
HORIZONS = "warning_seconds: 600, critical_seconds: 120"


def test_a_leak_is_forecast_a_minute_ahead_a_volume_before_full_and_a_saw_tooth_never(
    make_stack,
):
    stack = make_stack(
        FORESIGHT,
        environment={"LEAK_LIMIT": "64m", "LEAK_START": "20", "LEAK_RATE": "0.2"},
        services=(
            f"  leaky: {{predict: {{{HORIZONS}}}}}\n"
            f"  sawtooth: {{predict: {{{HORIZONS}}}}}\n"
            f"  filler: {{predict: {{{HORIZONS}, limits: {{volume/data: 64MiB}}}}}}\n"
        ),
    )
    stack.desired_file.write_text(stack.desired_file.read_text() + SAMPLING)
    stack.up()
    base = stack.serve("--interval-active", "2", "--interval-quiet", "5")

    first: dict[str, dict[str, Any]] = {}  # fingerprint -> the issue when first seen
    exhaustion: list[float] = []

    def watch() -> dict[str, Any] | None:
        """Note each forecast when it first shows; done once the leak's OOM kill is in."""
        for issue in stack.issues()["issues"]:
            if issue["kind"] == "predicted" and issue["fingerprint"] not in first:
                first[issue["fingerprint"]] = issue
                if issue["fingerprint"] == "predict:leaky:memory":
                    seconds = metric(
                        base,
                        "compose_controller_resource_exhaustion_seconds",
                        'env="e2e",resource="memory",service="leaky"',
                    )
                    exhaustion.append(seconds if seconds is not None else float("inf"))
        killed = stack.issue("drift:leaky:exited")
        return killed if killed and "OOM killed" in killed["title"] else None

    killed = wait_for(watch, 420, "the leak's OOM kill", interval=1.0)

    leak = first.get("predict:leaky:memory")
    trend = [t for t in stack.issues().get("trends", []) if t.get("service") == "leaky"]
    assert leak is not None, f"no forecast before the OOM kill; forecasts: {list(first)}; {trend}"
    assert leak["first_seen"] < (killed.get("fault_since") or killed["first_seen"])
    forecast = leak["forecast"]
    room = (forecast["limit"] - forecast["usage"]) / MIB
    assert room >= 12, f"only {room:.1f} MiB (under a minute of the leak) left at the forecast"
    assert leak["title"].startswith("at this rate leaky reaches its 64 MiB memory limit in about")
    assert leak["title"].endswith("(OOM kill)")
    assert leak["category"] == "predicted" and leak["blocking"] is False
    assert forecast["fit"]["z"] > 2.33 and len(forecast["samples"]) >= 6
    assert exhaustion and exhaustion[0] < 600  # /metrics said so too

    volume = first.get("predict:filler:volume/data")
    assert volume is not None, "the filling volume was not forecast"
    room = (volume["forecast"]["limit"] - volume["forecast"]["usage"]) / MIB
    assert room >= 24, f"only {room:.1f} MiB (under a minute of the filler) left at the forecast"
    assert volume["title"].startswith("at this rate the volume data of filler fills its declared")

    assert "predict:sawtooth:memory" not in first
    trends = {(t["service"], t["resource"]): t for t in stack.issues()["trends"]}
    saw = trends[("sawtooth", "memory")]
    assert saw["seconds_left"] is None and saw["peak"] > 20 * MIB  # sampled, never rising

    resolved = stack.wait_issue("predict:leaky:memory", "resolved", timeout=90)
    assert resolved["resolution"].startswith("the run it was about ended")
    assert stack.issue("predict:sawtooth:memory") is None


NOVEL = "FATAL: flux regulator desynchronised (code {n})"
NOISE = "ERROR cache refresh took {n} ms"


def test_a_line_before_three_crashes_is_learned_and_warns_before_the_fourth(make_stack):
    stack = make_stack(STACKS / "precursors.yaml")
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + "detection: {learn: {mode: warn, lookback_seconds: 20, min_incidents: 3}}\n"
        + "remediation: {budget: 50}\n"
    )
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "1")

    def precursors() -> dict[str, dict[str, Any]]:
        entries = stack.issues().get("learned", {}).get("precursors", [])
        return {e["template"].split(" ", 1)[0]: e for e in entries}  # by FATAL: / ERROR

    def crash(restarts: int) -> str:
        """Make it crash; once Docker restarted it and a pass counted it (the incident),
        when the run died, as the engine recorded it."""
        stack.compose("exec", "-T", "moody", "touch", "/tmp/crash")
        data = wait_for(
            lambda: (
                (d := stack.inspect("moody"))
                and d["RestartCount"] == restarts
                and d["State"]["Status"] == "running"  # Running is true while restarting too
                and d
            ),
            60,
            f"crash {restarts} and Docker's restart",
        )
        wait_for(
            lambda: (stack.issue("engine:moody:docker-restart") or {}).get("count") == restarts,
            30,
            f"a pass to count restart {restarts}",
        )
        return str(data["State"]["FinishedAt"])

    for n in (1, 2, 3):
        stack.say("moody", NOVEL.format(n=7730 + n) + "\n" + NOISE.format(n=800 + n) + "\n")
        wait_for(lambda n=n: f"code {7730 + n}" in stack.compose("logs", "moody"), 30, "the lines")
        crash(n)
        assert precursors()["FATAL:"]["learned"] is (n == 3)  # after the third, not before
        stack.say("moody", NOISE.format(n=900 + n) + "\n")  # and in healthy times
        wait_for(
            lambda n=n: precursors()["ERROR"]["otherwise"] >= n,
            60,
            "the healthy line's lookback to pass without a crash",
        )

    learned = precursors()
    assert learned["FATAL:"]["learned"] is True
    assert len(learned["FATAL:"]["incidents"]) == 3 and learned["FATAL:"]["otherwise"] == 0
    assert learned["ERROR"]["learned"] is False  # also seen when all was well
    assert [i for i in stack.issues()["issues"] if i["kind"] == "precursor"] == []

    stack.say("moody", NOVEL.format(n=7734) + "\n")  # the fourth appearance
    warning = wait_for(
        lambda: next((i for i in stack.issues()["issues"] if i["kind"] == "precursor"), None),
        30,
        "the learned precursor's warning",
    )
    assert warning["state"] == "open" and warning["category"] == "predicted"
    assert warning["title"] == "moody printed what came before 3 of its incidents (crash)"
    died = crash(4)
    assert warning["first_seen"] < died  # the warning came before the crash (both UTC)
    came = stack.wait_issue(warning["fingerprint"], "resolved", timeout=30)
    assert came["resolution"].startswith("came true: crash of moody")

    shown = stack.run_patterns("--url", f"{base}/status")
    assert "moody: LEARNED  unclassified:" in shown
    assert "    - id: moody-fatal-flux-regulator-desynchronised-code" in shown
