"""The fault suite's SIGKILL trials: the controller killed at random points during
remediation, 30 times over, on a real engine.

Each trial starts the controller on a service that always crashes, waits for the
controller's own first word about that service in its log (a step, a backoff, a proof: it
is at work), lets it go on for a random 0-4.5 s from there (so the kill lands before,
during and after steps, their commands and their proofs, however long a busy machine
took to start it) and SIGKILLs it. After every kill the state file must parse and lose
nothing (the issue and its attempts are still there, counts never go down). Over the
whole run, the engine's own record of what was done (``docker events``: every start of
the service's container) must show no step the state file does not count (a step is
recorded before it runs), and the backoff between steps must hold across the kills.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

from controller.issues.document import load_state
from tests.e2e.conftest import STACKS, Stack, wait_for

CHATTY = STACKS / "chatty.yaml"
TRIALS = 30
BACKOFF = 2.0  # backoff_initial_seconds of this test ...
MAX_BACKOFF = 4.0  # ... doubling to this
ACTING = " crasher: "  # a log line of the controller about the crasher: it is at work


def declare(stack: Stack) -> None:
    others = ("talker", "counter", "pytrace", "importer")
    lines = "".join(f"  {n}: {{replicas: 0}}\n" for n in others)
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + "services:\n"
        + lines
        + "  crasher: {verify_timeout_seconds: 3, min_ready_seconds: 1}\n"
        + "remediation: {budget: 1000, backoff_initial_seconds: 2, backoff_max_seconds: 4}\n"
    )


def starts_seen(path: Path) -> list[float]:
    """Epoch seconds of every start of the crasher's containers, as the engine logged."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "start":
            out.append(int(parts[0]) / 1e9)
    return out


def test_thirty_sigkills_during_remediation_lose_nothing_and_repeat_nothing(make_stack):
    stack = make_stack(CHATTY)
    declare(stack)
    stack.compose("up", "-d", "crasher")
    wait_for(lambda: stack.state("crasher")[0] == "exited", 30, "the crasher to crash")
    events = stack.root / "events.txt"
    sink = events.open("w")
    watcher = subprocess.Popen(  # the engine's own record of every start
        [
            "docker",
            "events",
            "--filter",
            f"label=com.docker.compose.project={stack.project}",
            "--filter",
            "label=com.docker.compose.service=crasher",
            "--filter",
            "type=container",
            "--format",
            "{{.TimeNano}} {{.Action}}",
        ],
        stdout=sink,
        env=stack.process_env,
    )
    state = stack.state_dir / "docker_issues_e2e.json"
    rng = random.Random(20261202)
    counts: list[int] = []
    attempts: list[int] = []
    try:
        for trial in range(TRIALS):
            proc = stack.start_controller("--metrics-port", "0", "--interval-active", "1")
            wait_for(
                lambda proc=proc: ACTING in stack.log() or proc.poll() is not None,
                120,
                f"trial {trial}: the controller to act on the crasher",
            )
            assert proc.poll() is None, f"trial {trial}: the controller exited: {stack.log()}"
            time.sleep(rng.uniform(0.0, 4.5))  # from its first action: cut it off anywhere
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            if not state.exists():
                continue
            saved = load_state(state)  # parses, whole: an atomic write never tears
            json.loads(state.read_text())
            issue = next((i for i in saved.issues if i.fingerprint == "drift:crasher:exited"), None)
            if issue is None:
                assert not counts, f"trial {trial}: the issue was lost"
                continue
            assert not counts or issue.count >= counts[-1], f"trial {trial}: the count went down"
            assert not attempts or len(issue.attempts) >= attempts[-1], (
                f"trial {trial}: attempts lost"
            )
            counts.append(issue.count)
            attempts.append(len(issue.attempts))
        time.sleep(1.0)  # the last events reach the file
    finally:
        watcher.terminate()
        watcher.wait(10)
        sink.close()

    saved = load_state(state)
    history = saved.remediation["crasher"].throttle
    recorded = sorted(t.timestamp() for t in history.steps)
    done = starts_seen(events)
    assert len(attempts) >= TRIALS // 2, "too few trials saw the controller at work"
    assert recorded, "no step was ever taken"
    # every start the engine saw was a step the state file counts: a step is saved before
    # it runs, so a kill can lose a start (recorded, never run) but never repeat one
    assert len(done) <= len(recorded), (len(done), len(recorded))
    # and the backoff held across all the kills: each step waited at least the backoff
    # its predecessors earned (2 s, then 4 s), which a restarted controller must honour
    gaps = [b - a for a, b in itertools.pairwise(recorded)]
    earned = [min(BACKOFF * 2**n, MAX_BACKOFF) for n in range(len(gaps))]
    assert gaps and all(g >= e - 0.5 for g, e in zip(gaps, earned, strict=True)), (gaps, earned)
    assert history.consecutive == len(recorded), "a kill reset the backoff"
    print(
        f"{TRIALS} SIGKILLs: {len(recorded)} steps recorded, {len(done)} starts by the engine, "
        f"shortest gap {min(gaps):.1f} s, consecutive {history.consecutive}, "
        f"last step {datetime.fromtimestamp(recorded[-1]).isoformat()}"
    )
