"""The short soak on the real engine (soak/): an 8-service stack left alone for 2.5 min
(longer than the stall limit and the quiet cadence), then about twenty real faults, every
verdict of the controller scored against the journal of what happened.

It asserts behaviour, never a time: nothing at all while the stack is quiet (no issue,
no action, no notification, no alert firing on a real Prometheus with the shipped
rules), and over the whole run no false action, no false page and no missed fault. When
it fails, the message is the scorer's list of what went wrong, with the evidence; the run
directory (printed) holds the journal, the controller's log and everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.report import render, render_faults, render_problems
from soak.run import Options, run


@pytest.mark.timeout(1800)
def test_a_quiet_stack_hears_nothing_and_every_fault_is_seen_and_handled_right(tmp_path: Path):
    found, meta = run(Options(workdir=tmp_path / "soak", baselines=False))
    told = "\n\n".join([render(found, meta), render_faults(found), render_problems(found)])
    print(told)
    assert found.quiet == {"issues": 0, "actions": 0, "notifications": 0, "alerts": 0}, told
    assert found.false_actions == 0, told
    assert found.false_pages == 0, told
    assert found.missed == 0 and found.recall == 1.0, told
