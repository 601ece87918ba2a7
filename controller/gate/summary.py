"""The gate's report on the GitHub Actions job page: appended to ``$GITHUB_STEP_SUMMARY``.

GitHub renders that file's Markdown under the job. The verdict comes first, then the
Markdown report (the same text as ``docker_issues_report_<env>.md``, redacted as it is).
Appended, never truncated: other steps of the job write there too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from controller.gate.run import GateResult
from controller.gate.verdict import Verdict
from controller.issues.report import cell

VARIABLE = "GITHUB_STEP_SUMMARY"


def step_summary_path(environ: Mapping[str, str] | None = None) -> Path | None:
    value = (os.environ if environ is None else environ).get(VARIABLE, "")
    return Path(value) if value else None


def append_step_summary(path: Path, env: str, result: GateResult, report: str) -> None:
    mark = "passed" if result.verdict is Verdict.CONVERGED else "failed"
    head = (
        f"## compose-controller gate {mark}: `{env}` "
        f"({result.verdict.name.lower().replace('_', ' ')}, exit {int(result.verdict)})\n\n"
        f"{cell(result.reason)}\n\n"
    )
    body = "### " + report[2:] if report.startswith("# ") else report  # under our heading
    with path.open("a", encoding="utf-8") as handle:
        handle.write(head + body + "\n")
