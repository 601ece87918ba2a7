"""Turning a `docker inspect` document into our snapshot (documents as the engine sends them)."""

from controller.observe.engine import snapshot_from_inspect

INSPECT = {
    "Id": "4f1c0ffee",
    "Name": "/demo-dev-backend-1",
    "RestartCount": 2,
    "State": {
        "Status": "running",
        "Running": True,
        "OOMKilled": False,
        "ExitCode": 0,
        "StartedAt": "2026-11-28T04:36:38.756931413Z",
        "Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": []},
    },
    "Config": {
        "Labels": {
            "com.docker.compose.project": "demo-dev",
            "com.docker.compose.service": "backend",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.config-hash": "0a9077",
            "com.docker.compose.oneoff": "False",
        }
    },
}


def test_a_compose_container_is_read_with_health_restarts_and_hash():
    snap = snapshot_from_inspect(INSPECT)
    assert (snap.name, snap.service, snap.number) == ("demo-dev-backend-1", "backend", 1)
    assert (snap.status, snap.health, snap.restart_count) == ("running", "unhealthy", 2)
    assert snap.failing_streak == 3
    assert snap.config_hash == "0a9077" and not snap.oneoff


def test_a_container_without_healthcheck_or_labels_reads_safely():
    snap = snapshot_from_inspect(
        {
            "Id": "x",
            "Name": "/x",
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
            "Config": {"Labels": None},
        }
    )
    assert snap.health is None and snap.service == "" and snap.number == 0
    assert snap.exit_code == 137 and snap.oom_killed


def test_a_failing_streak_starts_at_its_first_failed_check():
    health = {
        "Status": "healthy",
        "FailingStreak": 2,
        "Log": [
            {"Start": "2026-11-28T04:36:40Z", "ExitCode": 0},
            {"Start": "2026-11-28T04:36:41Z", "ExitCode": 1},
            {"Start": "2026-11-28T04:36:42Z", "ExitCode": 1},
        ],
    }
    snap = snapshot_from_inspect({**INSPECT, "State": {**INSPECT["State"], "Health": health}})
    assert (snap.health, snap.failing_streak) == ("healthy", 2)
    assert snap.failing_since == "2026-11-28T04:36:41Z"


def test_what_the_last_failed_check_printed_is_kept_on_one_bounded_line():
    health = {
        "Status": "unhealthy",
        "FailingStreak": 3,
        "Log": [
            {"Start": "2026-11-28T04:36:41Z", "ExitCode": 1, "Output": "old\n"},
            {
                "Start": "2026-11-28T04:36:42Z",
                "ExitCode": 7,
                "Output": "  % Total\n\x1b[31mcurl: (7) Failed to connect to 127.0.0.1 port 8080\x1b[0m\n\n",
            },
        ],
    }
    snap = snapshot_from_inspect({**INSPECT, "State": {**INSPECT["State"], "Health": health}})
    assert snap.health_output == "curl: (7) Failed to connect to 127.0.0.1 port 8080"
    health["Log"][-1]["Output"] = "x" * 5000  # type: ignore[index]
    long = snapshot_from_inspect({**INSPECT, "State": {**INSPECT["State"], "Health": health}})
    assert len(long.health_output) == 200 and long.health_output.endswith("…")
    health["FailingStreak"] = 0
    passing = snapshot_from_inspect({**INSPECT, "State": {**INSPECT["State"], "Health": health}})
    assert passing.health_output == ""
