"""The status page in a real headless browser (Debian's chromium, driven by its
chromedriver through selenium) against a real controller on a real compose stack: a
`docker kill` shows on the open page without a reload, the service's own page says what
`controller status SERVICE` says, and both work through a reverse proxy on a sub-path."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import STACKS, free_ports, http_get, wait_for

TRIO = STACKS / "trio.yaml"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no headless browser: Debian's chromium and chromium-driver are not installed "
    "(scripts/engine-up installs them, as .ci/run does)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def sub_path_proxy() -> Iterator[Callable[[str], str]]:
    """A reverse proxy on loopback that serves a controller's pages under ``/ops/cc/``
    (as nginx's ``location /ops/cc/ { proxy_pass http://controller/; }`` would, and
    without X-Forwarded-Prefix: the links must be relative). Its base URL for a target."""
    servers: list[ThreadingHTTPServer] = []

    def start(target: str) -> str:
        class Forward(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.startswith("/ops/cc/"):
                    self.send_error(404)
                    return
                url = target + self.path.removeprefix("/ops/cc")
                try:
                    with urllib.request.urlopen(url, timeout=10) as reply:
                        code, headers, body = reply.status, reply.headers, reply.read()
                except urllib.error.HTTPError as err:
                    code, headers, body = err.code, err.headers, err.read()
                self.send_response(code)
                for name in ("Content-Type", "Content-Security-Policy", "Cache-Control"):
                    if headers.get(name):
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        (port,) = free_ports(1)
        server = ThreadingHTTPServer(("127.0.0.1", port), Forward)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port}/ops/cc/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def until(driver: WebDriver, what: str, condition, timeout: float = 90):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=what)


def shows_incident(service: str, title: str):  # type: ignore[no-untyped-def]
    """The page shows ``service``'s incident: a bar on its timeline, and its title (an
    open issue, or the issue of a step taken for it)."""

    def seen(driver: WebDriver) -> bool:
        bars = driver.find_elements(
            By.CSS_SELECTOR, f'svg.timeline[data-service="{service}"] rect.incident'
        )
        return bool(bars) and title in driver.find_element(By.TAG_NAME, "main").text

    return seen


def test_a_killed_service_shows_on_the_open_page_without_a_reload(
    make_stack, browser, sub_path_proxy
):
    stack = make_stack(TRIO)
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 90, "the stack to count as converged")

    browser.get(base + "/")
    assert "compose-controller" in browser.title
    until(
        browser,
        "three services, alpha Ready",
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "tr[data-service]")) == 3
            and d.find_element(By.CSS_SELECTOR, 'tr[data-service="alpha"] td:nth-child(2)').text
            == "Ready"
        ),
    )
    assert not browser.find_elements(
        By.CSS_SELECTOR, 'svg.timeline[data-service="alpha"] rect.incident'
    )
    browser.execute_script("window.notReloaded = true")  # a reload would lose it

    stack.kill("alpha")
    killed = time.monotonic()
    until(browser, "alpha's incident on the page", shows_incident("alpha", "alpha exited"))
    print(
        f"\nthe open page showed alpha's incident {time.monotonic() - killed:.2f} s after the kill"
    )
    assert browser.execute_script("return window.notReloaded") is True  # updated in place
    code, status = http_get(base + "/status")
    assert code == 200 and "drift:alpha:exited" in status  # the same incident as /status

    # its own page, by the overview's link: `controller status alpha`, its timeline
    browser.find_element(By.CSS_SELECTOR, 'tr[data-service="alpha"] a').click()
    until(browser, "alpha's page", lambda d: d.current_url == base + "/service/alpha")
    described = browser.find_element(By.TAG_NAME, "pre").text
    assert described.splitlines()[0].split() == ["Name:", "alpha"]
    assert "alpha exited with code 137" in described
    assert browser.find_elements(
        By.CSS_SELECTOR, 'svg.timeline[data-service="alpha"] rect.incident'
    )
    # and back, by a relative link
    browser.find_element(By.LINK_TEXT, "\u2190 all services").click()
    until(browser, "the overview", lambda d: d.current_url == base + "/")

    # behind a reverse proxy on a sub-path: the same pages, links that stay under it
    proxied = sub_path_proxy(base)
    browser.get(proxied)
    until(browser, "the proxied overview", shows_incident("alpha", "alpha exited"))
    browser.find_element(By.CSS_SELECTOR, 'tr[data-service="beta"] a').click()
    until(
        browser, "beta's page under the proxy", lambda d: d.current_url == proxied + "service/beta"
    )
    until(browser, "beta's page", lambda d: "Name:" in d.find_element(By.TAG_NAME, "pre").text)
    browser.execute_script("window.notReloaded = true")
    stack.kill("beta")
    until(browser, "beta's incident, proxied", shows_incident("beta", "beta exited"))
    assert browser.execute_script("return window.notReloaded") is True
    browser.find_element(By.LINK_TEXT, "\u2190 all services").click()
    until(browser, "the proxied overview again", lambda d: d.current_url == proxied)

    blocked = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert blocked == []  # its own script and style ran, allowed by their hashes
