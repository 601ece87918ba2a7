"""Root causes on evidence, on a real engine: a dependent's connection error is linked to
its broken dependency only when it names it (issue 18's report), and the link says why."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import CONTROLLER, STACKS, Stack, free_ports, metric, wait_for

ROOTCAUSE = STACKS / "rootcause.yaml"


def passes(base: str) -> float:
    return metric(base, "compose_controller_reconcile_passes_total", 'env="e2e",result="ok"') or 0.0


def log_issue(stack: Stack, service: str) -> dict | None:  # type: ignore[type-arg]
    return next(
        (
            i
            for i in stack.issues()["issues"]
            if i["service"] == service and i["source"] == "log" and i["state"] != "resolved"
        ),
        None,
    )


def test_an_error_naming_a_host_that_is_no_service_is_not_linked_and_one_naming_the_dependency_is(
    make_stack,
):
    (web_port,) = free_ports(1)
    stack = make_stack(
        ROOTCAUSE,
        {"WEB_PORT": str(web_port)},
        services='  web: {addresses: ["127.0.0.1:${WEB_PORT}"]}\n',
    )
    stack.compose("up", "--detach")
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    web = wait_for(
        lambda: (i := stack.issue("drift:web:exited")) and i["state"] != "resolved" and i,
        120,
        "web's crash to be an issue",
    )
    # web broke before either error was printed: the dependency graph and the time
    # order alone would blame web for both
    stack.say("api", "ERROR: connection refused to db:5432\n")
    stack.say("shop", f"ERROR: connection refused to 127.0.0.1:{web_port}\n")
    api = wait_for(lambda: log_issue(stack, "api"), 120, "api's connection error to be an issue")
    assert api["pattern_id"] == "conn-refused" and api["named"] == ["db:5432"]
    shop = wait_for(
        lambda: (i := log_issue(stack, "shop")) and i["caused_by"] and i,
        120,
        "shop's connection error to be linked to web",
    )
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 2, 120, "two more passes")

    doc = stack.issues()
    web = next(i for i in doc["issues"] if i["fingerprint"] == "drift:web:exited")
    assert web["state"] != "resolved"  # still broken: a cause there was to blame
    api = log_issue(stack, "api")
    assert api is not None and api["caused_by"] == [] and api["cause_evidence"] == {}, api
    shop = log_issue(stack, "shop")
    why = f"names 127.0.0.1:{web_port}, port {web_port} of web (declared)"
    assert shop is not None and shop["caused_by"] == [web["id"]], shop
    assert shop["cause_evidence"] == {web["id"]: why}
    assert why in shop["plan"]

    # the evidence is shown where a person looks: the report and `controller status`
    assert why in stack.report()
    described = subprocess.run(
        [CONTROLLER, "status", "--url", base + "/status", "--color", "never", "shop"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert described.returncode == 0, described.stderr
    assert f"Caused by:    {web['id']} (web: " in described.stdout and why in described.stdout
    assert "is caused by an upstream issue (" + web["id"] + ": " + why in stack.log()


def test_a_dependency_a_person_stops_slowly_is_the_cause_and_its_dependent_is_not_restarted(
    make_stack,
):
    # issue 18's short soak: `docker stop db` while PostgreSQL waits for its clients. db
    # stops serving at the signal and dies seconds later; api's healthcheck fails from the
    # signal on. api waits for db, is linked to db's stop (db's fault began at the signal,
    # before api's), and when a person starts db again api is judged by its next check,
    # not restarted for the one that failed while db was down
    stack = make_stack(STACKS / "slowstop.yaml", {"STOP_SECONDS": "4"})
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 90, "the stack to converge")

    stack.docker("stop", "--time", "20", stack.inspect("db")["Id"])  # returns once db died
    db = wait_for(
        lambda: (i := stack.issue("drift:db:exited")) and i["state"] == "needs-human" and i,
        60,
        "db's stop to be left to the person",
    )
    assert "stopped by a person" in db["resolution"]
    api = wait_for(
        lambda: (i := stack.issue("drift:api:unhealthy")) and i["caused_by"] and i,
        60,
        "api's failing healthcheck to be linked to db's stop",
    )
    assert api["caused_by"] == [db["id"]], api
    assert "db's fault began" in api["cause_evidence"][db["id"]]
    said = wait_for(
        lambda: (i := log_issue(stack, "api")) and i["caused_by"] and i,
        60,
        "api's connection error to be linked to db's stop",
        seen=lambda: (log_issue(stack, "api"), stack.issue("drift:db:exited")),
    )

    stack.docker("start", stack.inspect("db")["Id"])  # the person brings it back
    wait_for(
        lambda: (i := stack.issue("drift:api:unhealthy")) and i["state"] == "resolved",
        90,
        "api to recover on its own once db serves again",
    )
    # its error ends with db's incident (not after 300 s of quiet), and never reopens
    ended = wait_for(
        lambda: (i := stack.issue(said["fingerprint"])) and i["state"] == "resolved" and i,
        90,
        "api's connection error to end with db's incident",
        seen=lambda: stack.issue(said["fingerprint"]),
    )
    assert ended["resolution"] == "its cause recovered (db)", ended
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 2, 60, "two more passes")
    assert stack.issue(said["fingerprint"])["state"] == "resolved"  # type: ignore[index]
    api = stack.issue("drift:api:unhealthy")
    assert api is not None and api["attempts"] == [], api  # never restarted
    assert stack.inspect("api")["RestartCount"] == 0
    assert "api: restart" not in stack.log()
