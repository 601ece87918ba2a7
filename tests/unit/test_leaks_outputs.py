"""The probe's secret shapes (issue 20) reach no output: one test per output.

A gate runs on the fake engine while the containers say secrets in the probe's shapes (a
Slack webhook URL, a password glued to its flag) and in more of our own: in their logs,
in a failing healthcheck's output, in ``docker compose`` stderr, and in the engine's own
error. Then every text output the controller has is searched for them: the JSON file, the
Markdown report, ``/status`` over HTTP, ``controller status`` (get and describe), the log
in text and in JSON, the JUnit report, the GitHub step summary, the notification body,
the gate's progress lines and final table, and the status page (overview and per service).
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.cli import configure_logging
from controller.gate.junit import junit_report
from controller.gate.progress import Progress, final_table
from controller.gate.run import run_gate
from controller.gate.summary import append_step_summary
from controller.http import StatusServer
from controller.issues.report import render_markdown
from controller.model import NotifySettings, RemediationSettings, Severity, system_clock
from controller.notify import Notifier
from controller.notify.message import Message
from controller.observe.gateway import ComposeError, EngineUnavailable
from controller.runtime import Controller, Settings, assemble
from controller.status import status_command
from controller.status.page import StatusPages
from tests.fakes import FakeWorld, desired, spec

# line -> the secret in it
SHAPES = {
    # the probe's
    "POST https://hooks.slack.com/services/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 failed": "Xy9zAb8Cd7Ef6Gh5Ij4Kl3Mn",
    "mysql -uroot -pGlu3dS3cret -e 'select 1'": "Glu3dS3cret",
    "tool --password=EqS3cret42 --verbose": "EqS3cret42",
    "sqlcmd -S db -U sa -PSqlS3cret7": "SqlS3cret7",
    # more webhooks
    "https://discord.com/api/webhooks/123456789012345678/Dx9-DiscordT0ken_abcdefghijkl": "Dx9-DiscordT0ken",
    "https://contoso.webhook.office.com/webhookb2/a1b2@c3d4/IncomingWebhook/0f1e2d3c4b5a69788796a5b4c3d2e1f0/x": "0f1e2d3c4b5a6978",
    "http://127.0.0.1:8065/hooks/MmHook5ecret99": "MmHook5ecret99",
    "json://hooks.example.com/n?+X-Auth=Hdr5ecret31&-field=Pay5ecret32": "Hdr5ecret31",
    # tokens, cloud keys, DSNs
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.Jwt5ig9aturePart0": "Jwt5ig9aturePart0",
    "AKIAZ7Q2X9WE4RT5YU6I": "AKIAZ7Q2X9WE4RT5YU6I",
    "app:G0Dsn5ecret@tcp(db:3306)/app": "G0Dsn5ecret",
    "mongodb+srv://app:M0ngo5ecret@cluster0.ab1cd.mongodb.net/app": "M0ngo5ecret",
    "redis://:R3dis5ecret@cache:6379/0": "R3dis5ecret",
    "redis-cli -h cache -a RedisCli5ecret9 ping": "RedisCli5ecret9",
    "sqlplus scott/T1gerPass9@//db:1521/orcl": "T1gerPass9",
    "1234567890:AAFx9TelegramBotT0kenPart0123456789": "AAFx9TelegramBotT0ken",
}
SECRETS = list(SHAPES.values())
SAID = " | ".join(SHAPES)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


class _Captured:
    """A notification sender that keeps what it would have sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def send(self, message: Message) -> list[object]:
        self.messages.append(message)
        return []


@dataclass
class Outputs:
    texts: dict[str, str]


def _world() -> FakeWorld:
    world = FakeWorld()
    world.healthchecked.add("db")
    world.run("db", health="unhealthy", failing_streak=3, health_output=SAID)
    world.sick.add("db")
    world.run("web", status="exited", exit_code=1)
    world.crashing.add("web")
    for n, line in enumerate(SHAPES):
        world.print(
            "web-1-id", 1_800_000_000_000_000_000 + n, f"ERROR Connection refused: {line}".encode()
        )

    def failing_up(service: str, **kw: object) -> None:
        raise ComposeError(f"compose up exited 1: {SAID}")

    world.up = failing_up  # type: ignore[assignment]
    return world


def _run_gate(state_dir: Path, json_log: bool) -> tuple[Controller, str, str, object]:
    world = _world()
    controller = assemble(
        Settings(env="dev", state_dir=state_dir, once=True, shutdown_timeout=5.0),
        desired(
            spec("web", min_ready=0.0),
            spec("db", min_ready=0.0, check_health=True),
            remediation=RemediationSettings(log_quiet=0.0),
        ),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )
    log, progress_out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(log):
        configure_logging("DEBUG", json_log)
        try:
            for line in SHAPES:  # what any line of ours may quote: the sink masks it
                logger.warning("a step said: {}", line)
            progress = Progress(progress_out, ["web", "db"])
            result = run_gate(
                controller,
                timeout=20,
                engine_timeout=5,
                on_progress=lambda: progress.update(
                    controller.store.services(),
                    controller.store.issues(),
                    controller.records(),
                    controller.engine_error,
                ),
                sleep=lambda s: None,
            )
        finally:
            logger.remove()
    table = "\n".join(
        final_table(
            {"web": True, "db": True},
            controller.store.services(),
            controller.store.issues(),
            controller.records(),
        )
    )
    return controller, log.getvalue(), progress_out.getvalue() + table, result


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outputs]:
    root = tmp_path_factory.mktemp("leaks")
    controller, log_text, progress, result = _run_gate(root / "text", json_log=False)
    _, log_json, _, _ = _run_gate(root / "json", json_log=True)
    doc = controller.document()
    assert any(i["fingerprint"].startswith("log:") for i in doc["issues"])  # logs were read
    assert any("compose up exited 1" in a["detail"] for i in doc["issues"] for a in i["attempts"])
    texts = {
        "json": controller.json_path.read_text(),
        "report": controller.report_path.read_text(),
        "log text": log_text,
        "log json": log_json,
        "progress and final table": progress,
        "junit": junit_report(doc, {"web": True, "db": True}, result),  # type: ignore[arg-type]
    }
    summary = root / "summary.md"
    append_step_summary(summary, "dev", result, render_markdown(doc))  # type: ignore[arg-type]
    texts["step summary"] = summary.read_text()
    server = StatusServer(
        "127.0.0.1",
        0,
        controller.registry,
        lambda: True,
        controller.document,
        pages=StatusPages(lambda: datetime.now(UTC)),
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}/status"
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as reply:
            texts["/status"] = reply.read().decode()
        pages = []  # unescaped: a secret must not survive as &-entities either
        for path in ("/", "/service/web", "/service/db"):
            with urllib.request.urlopen(url.removesuffix("/status") + path, timeout=10) as reply:
                pages.append(html.unescape(reply.read().decode()))
        texts["status page"] = pages[0]
        texts["status page per service"] = pages[1] + pages[2]
        got, described = io.StringIO(), io.StringIO()
        assert status_command(["--url", url], out=got, environ={}) == 0
        for service in ("web", "db"):
            assert status_command([service, "--url", url], out=described, environ={}) == 0
        texts["controller status get"] = got.getvalue()
        texts["controller status describe"] = described.getvalue()
    finally:
        server.stop()
    sender = _Captured()
    notifier = Notifier(
        NotifySettings(urls=("json://127.0.0.1:1",), group_seconds=0, min_severity=Severity.LOW),
        "dev",
        lambda event, result: None,
        lambda seconds: None,
        time.time,
        sender=sender,  # type: ignore[arg-type]
    )
    notifier.observe([])
    notifier.observe(controller.store.issues())
    notifier.close(10)
    texts["notification"] = "\n".join(f"{m.title}\n{m.body}" for m in sender.messages)
    assert sender.messages
    yield Outputs(texts)


OUTPUTS = [
    "json",
    "report",
    "/status",
    "controller status get",
    "controller status describe",
    "log text",
    "log json",
    "junit",
    "step summary",
    "notification",
    "progress and final table",
    "status page",
    "status page per service",
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_no_shape_of_the_probe_leaks_into(outputs, output):
    text = outputs.texts[output]
    assert text.strip(), f"{output} is empty"
    assert leaked(text) == [], text


def test_the_log_in_json_is_json_and_says_what_happened(outputs):
    lines = [json.loads(line) for line in outputs.texts["log json"].splitlines() if line.strip()]
    assert any("recreate failed" in line["text"] for line in lines)


def test_an_engine_error_quoting_a_secret_is_masked_in_the_document_and_the_verdict(tmp_path):
    class Broken(FakeWorld):
        def list_summaries(self, project):  # type: ignore[no-untyped-def]
            raise EngineUnavailable(f"connect: {SAID}")

        list_containers = list_summaries  # type: ignore[assignment]

    world = Broken()
    controller = assemble(
        Settings(env="dev", state_dir=tmp_path, once=True),
        desired(spec("web")),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )
    result = run_gate(controller, timeout=5, engine_timeout=0.1, sleep=lambda s: None)
    doc = controller.document()
    texts = [
        json.dumps(doc),
        result.reason,
        junit_report(doc, {"web": True}, result),
        controller.json_path.read_text(),
    ]
    assert "connect:" in doc["engine"]["detail"]
    assert [leaked(t) for t in texts] == [[], [], [], []]
