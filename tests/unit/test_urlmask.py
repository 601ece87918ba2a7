"""Every Apprise URL is shown through one function, ``masked_url``, with every secret
masked: the user, the password, a host that is a token, every path segment, every ``+``,
``-`` and ``:`` parameter and every other parameter but Apprise's display options.
Apprise's own "privacy" form kept header and payload parameters (issue 20); a failed
delivery logged it. Here: generated URLs of Apprise's shapes, the delivery log, Apprise's
own log lines, and a desired-state problem about a URL."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger

from controller.cli import configure_logging
from controller.desired import DesiredStateError, load_desired
from controller.detect.urlmask import masked_url
from controller.model import NotifySettings
from controller.notify import Notifier
from controller.notify.message import Message
from controller.notify.sender import AppriseSender
from tests.unit.test_notify import T0, counting, issue, wait_for

TOKEN = string.ascii_letters + string.digits + "-_"
URL_SAFE = string.ascii_letters + string.digits + "-._~%"


def secrets(alphabet: str = TOKEN) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=8, max_size=40).filter(
        lambda s: any(c.isdigit() for c in s) and "***" not in s
    )


@st.composite
def apprise_urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """An Apprise URL in one of its shapes, and the secrets in it."""
    a, b, c = draw(secrets()), draw(secrets()), draw(secrets())
    shape = draw(
        st.sampled_from(
            [
                ("slack://{a}/{b}/{c}/#general", [a, b, c]),
                ("slack://bot@{a}/{b}/{c}", [a, b, c]),
                ("discord://{a}/{b}", [a, b]),
                ("msteams://team@{a}/{b}/{c}/", [a, b, c]),
                ("tgram://{a}:{b}/{c}", [a, b, c]),
                ("pover://{a}@{b}", [a, b]),
                ("ntfy://{a}", [a]),
                ("ntfys://{a}@ntfy.example.com/{b}", [a, b]),
                ("gotify://gotify.example.com/{a}", [a]),
                ("mailto://{a}:{b}@mail.example.com?to=ops@example.com", [a, b]),
                ("json://{a}:{b}@127.0.0.1:8080/hooks/{c}", [a, b, c]),
                ("json://hooks.example.com/notify?+X-Auth={a}&-field={b}&:key={c}", [a, b, c]),
                ("xml://hooks.example.com/?%2BX-Token={a}&%3Apayload={b}", [a, b]),
                ("form://[::1]:8000/x?token={a}&format=text", [a]),
                ("apprise://apprise.example.com/{a}?tags={b}", [a, b]),
                ("https://hooks.slack.com/services/{a}/{b}/{c}", [a, b, c]),
                ("https://discord.com/api/webhooks/{a}/{b}", [a, b]),
            ]
        )
    )
    template, found = shape
    return template.format(a=a, b=b, c=c), found


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(apprise_urls())
def test_no_piece_of_an_apprise_urls_secrets_is_shown(case):
    url, found = case
    shown = masked_url(url)
    for secret in found:
        for i in range(len(secret) - 5):
            assert secret[i : i + 6] not in shown, (url, shown, secret)
    assert shown.split("://")[0] == url.split("://")[0].lower()
    assert masked_url(shown) == shown


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_shown_without_an_error(text):
    shown = masked_url(text)
    assert isinstance(shown, str)
    assert "://" in shown or shown == "***"


def test_what_tells_endpoints_apart_is_kept():
    assert masked_url("json://user:pw5ecret@hooks.example.com:8443/a/b?format=markdown") == (
        "json://***:***@hooks.example.com:8443/***/***?format=markdown"
    )
    assert masked_url("slack://T1/B2/C3/#ops") == "slack://***/***/***/#***"
    assert masked_url("ntfy://10.0.0.7/topic") == "ntfy://10.0.0.7/***"
    assert masked_url("not a url") == "***"


# --- where a URL is shown ---------------------------------------------------------------

SECRET_URL = (
    "json://us3r:pa55word9@127.0.0.1:{port}/hooks/T0kenPath9"
    "?+X-Auth=hdr5ecret9&-field=pay5ecret9&:key=rem4pSecret9"
)
PIECES = ["us3r", "pa55word9", "T0kenPath9", "hdr5ecret9", "pay5ecret9", "rem4pSecret9"]


def test_a_failed_delivery_names_its_endpoint_masked(capsys):
    import socket

    with socket.socket() as held:  # a port nothing accepts on
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
    counts, count = counting()
    settings = NotifySettings(urls=(SECRET_URL.format(port=port),), group_seconds=0, timeout=2)
    configure_logging("DEBUG")
    try:
        notifier = Notifier(settings, "dev", count, lambda seconds: None, lambda: T0)
        notifier.observe([issue("backend")])
        wait_for(lambda: counts.get(("opened", "failed")), 30, "the failure")
        notifier.close()
    finally:
        logger.remove()
    log = capsys.readouterr().err
    assert "notify.urls[0] json://***:***@127.0.0.1:" in log, log
    assert "?+X-Auth=***&-field=***&:key=***" in log
    assert [p for p in PIECES if p in log] == []


def test_apprises_own_log_lines_show_urls_masked(capsys):
    """Apprise logs the URL it loaded and the one it posts to (at DEBUG); with a person's
    DEBUG set on its logger, those lines reach the log masked all the same."""
    configure_logging("DEBUG")
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    apprise_log.setLevel(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        sender = AppriseSender([SECRET_URL.format(port=9)], timeout=1)
        sender.send(Message("t", "b", "info"))
    finally:
        apprise_log.setLevel(level)
        logging.getLogger().setLevel(logging.WARNING)
        logger.remove()
    log = capsys.readouterr().err
    assert "JSON" in log  # Apprise did speak
    assert [p for p in PIECES if p in log] == [], log


def test_a_url_apprise_cannot_use_is_named_masked(tmp_path: Path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / "dev.yaml").write_text(
        "project: demo\ncompose_files: [compose.yaml]\nnotify:\n"
        "  urls: ['nosuch://us3r:pa55word9@host.example.com/T0kenPath9']\n"
    )
    with pytest.raises(DesiredStateError) as caught:
        load_desired("dev", tmp_path, lambda p: {"services": {"web": {"image": "x"}}}, environ={})
    message = str(caught.value)
    assert "nosuch://***:***@host.example.com/***" in message, message
    assert [p for p in PIECES if p in message] == []
