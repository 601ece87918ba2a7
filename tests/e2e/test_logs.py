"""Log detection on a real engine: streaming, records, cursors, redaction."""

from __future__ import annotations

from tests.e2e.conftest import STACKS, metric, wait_for

CHATTY = STACKS / "chatty.yaml"
RUN_DONE = """  patterns:
    - id: counter-run-done
      regex: 'counter run [0-9]+ done'
      category: health
      severity: low
      title: The counter finished a run
"""


def log_issues(stack, service: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [i for i in stack.issues()["issues"] if i["source"] == "log" and i["service"] == service]


def test_a_real_postgres_error_is_an_issue_in_seconds_without_waiting_for_a_poll(make_stack):
    stack = make_stack()
    stack.up("db")
    stack.serve("--interval-active", "120", "--interval-quiet", "120")
    wait_for(lambda: stack.issues()["services"], 60, "the first pass")
    # a client asks for a database that does not exist: the real server logs the real error
    stack.psql(
        "-d",
        "ghostdb",
        "-c",
        "select 1",
        check=False,
    )
    issue = wait_for(
        lambda: next(
            (i for i in log_issues(stack, "db") if i["pattern_id"] == "pg-database-missing"), None
        ),
        30,
        "the missing-database issue (the next poll is 120 s away)",
    )
    assert issue["category"] == "database"
    assert issue["severity"] == "critical"
    assert 'database "ghostdb" does not exist' in issue["detail"]
    assert "FATAL" in issue["samples"][0]


def test_a_restarted_or_recreated_containers_lines_are_neither_lost_nor_doubled(make_stack):
    stack = make_stack(
        CHATTY,
        services="",
    )
    stack.desired_file.write_text(stack.desired_file.read_text() + "detection:\n" + RUN_DONE)
    stack.up("counter")
    base = stack.serve()

    def runs_read() -> int:
        issue = next(
            (i for i in log_issues(stack, "counter") if i["pattern_id"] == "counter-run-done"), None
        )
        return issue["count"] if issue else 0

    for runs, change in ((1, None), (2, "restart"), (3, "recreate")):
        if change == "restart":
            stack.docker("restart", "--time", "1", stack.inspect("counter")["Id"])
        elif change == "recreate":
            stack.compose("up", "-d", "--force-recreate", "counter")
        wait_for(lambda runs=runs: runs_read() >= runs, 60, f"run {runs} to be read")
        assert runs_read() == runs  # the "done" line of each run was counted once
        lines = metric(base, "compose_controller_log_lines_total", 'env="e2e",service="counter"')
        assert lines == 201 * runs  # every line of every run, once


def test_a_real_python_traceback_is_one_finding_with_the_whole_record(make_stack):
    stack = make_stack(CHATTY)
    stack.up("pytrace")
    stack.serve()
    (issue,) = wait_for(lambda: log_issues(stack, "pytrace"), 60, "the traceback's issue")
    record = issue["samples"][0]
    assert issue["count"] == 1
    assert record.startswith("Traceback (most recent call last):")
    assert record.count("Traceback (most recent call last):") == 2  # chained: one record
    assert "KeyError: 'PAYMENTS_API_URL'" in record
    assert record.rstrip().endswith("RuntimeError: cannot configure the payments client")


SECRET_LINES = """2026-11-28 10:00:00 ERROR auth: password authentication failed for user "app" (password=hunter2-topsecret)
psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed: Connection refused; dsn=postgresql://app:s3cr3t-pass@127.0.0.1:5432/app
"""


def test_secrets_in_log_lines_appear_in_no_output(make_stack):
    stack = make_stack(CHATTY)
    stack.up("talker")
    stack.serve("--log-level", "DEBUG")
    stack.say("talker", SECRET_LINES)
    wait_for(lambda: len(log_issues(stack, "talker")) >= 2, 60, "both lines' issues")
    json_text = (stack.state_dir / "docker_issues_e2e.json").read_text()
    outputs = {"json": json_text, "report": stack.report(), "controller log": stack.log()}
    for name, text in outputs.items():
        for secret in ("hunter2-topsecret", "s3cr3t-pass"):
            assert secret not in text, f"{secret} leaked into the {name}"
    assert "password=***" in json_text and "app:***@" in json_text


def test_a_line_longer_than_the_limit_is_cut_and_a_terminals_log_is_read_too(make_stack):
    stack = make_stack(CHATTY)
    stack.up("wide", "teletype")
    base = stack.serve()
    for service in ("wide", "teletype"):
        (issue,) = wait_for(lambda s=service: log_issues(stack, s), 60, f"{service}'s issue")
        assert issue["pattern_id"] == "conn-refused" and issue["count"] == 1
        assert issue["detail"] == "Error: connect ECONNREFUSED 127.0.0.1:6379"  # no \r left
    # the 40 KiB line is one line, cut at 16 KiB: the fault named at its end is never seen
    assert metric(base, "compose_controller_log_lines_total", 'env="e2e",service="wide"') == 2
    assert metric(base, "compose_controller_log_lines_total", 'env="e2e",service="teletype"') == 1
    assert not [i for i in log_issues(stack, "wide") if i["pattern_id"] == "segfault"]
