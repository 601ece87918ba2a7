"""The HTTP endpoints' server: half-open, idle and slow clients cost bounded resources,
and a burst is answered (issue 20: the standard library's server had a backlog of 5, no
read timeout and a thread per connection). Real sockets on loopback; no timing figure
is asserted (bench/http_burst.py measures)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from controller.http import BACKLOG, THREADS, StatusServer


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def serve() -> Iterator:  # type: ignore[type-arg]
    servers: list[StatusServer] = []

    def start(**kw: int) -> tuple[str, int]:
        server = StatusServer(
            "127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: {"services": []}, **kw
        )
        server.start()
        servers.append(server)
        return server.address

    yield start
    for server in servers:
        server.stop()


def get(port: int, path: str = "/healthz", timeout: float = 30) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
        return int(reply.status)


def connect(port: int, sent: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if sent:
        sock.sendall(sent)
    return sock


def test_half_sent_and_silent_clients_hold_no_thread_and_block_no_one(serve):
    _, port = serve()
    before = threading.active_count()
    held = [connect(port, b"GET /metr") for _ in range(100)]  # a request cut in half
    held += [connect(port) for _ in range(100)]  # a TLS hello never comes, nor anything
    held += [connect(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") for _ in range(50)]
    try:
        assert get(port, "/healthz") == 200
        assert get(port, "/metrics") == 200
        assert threading.active_count() <= before + THREADS  # no thread per connection
    finally:
        for sock in held:
            sock.close()


def test_a_silent_connection_is_closed_after_the_idle_time(serve):
    _, port = serve(idle_seconds=1)
    silent = connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends its head
    silent.settimeout(60)
    assert silent.recv(100) == b""  # closed by the server, not by us
    silent.close()


def test_beyond_the_connection_limit_new_clients_wait_in_the_backlog_then_are_served(serve):
    _, port = serve(idle_seconds=2, connections=20)
    held = [connect(port) for _ in range(25)]
    try:
        assert get(port, "/healthz", timeout=60) == 200  # after idle ones were closed
    finally:
        for sock in held:
            sock.close()


def test_a_request_head_too_large_is_refused_not_buffered(serve):
    _, port = serve()
    sock = connect(port, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n")
    reply = sock.recv(200)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 431") or reply.startswith(b"HTTP/1.0 431"), reply


def test_a_burst_of_concurrent_requests_is_all_answered(serve):
    _, port = serve()
    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(lambda _: get(port), range(1000)))
    assert codes == [200] * 1000


def test_the_listen_backlog_is_real(serve):
    assert BACKLOG >= 1024
    _, port = serve()
    # connections the server has not accepted yet queue in the kernel, not refused
    socks = [connect(port) for _ in range(300)]
    try:
        assert get(port) == 200
    finally:
        for sock in socks:
            sock.close()


def test_stop_ends_the_server_with_clients_still_connected():
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: {})
    server.start()
    port = server.address[1]
    held = [connect(port, b"GET /") for _ in range(10)]
    server.stop()
    assert not any(t.name == "http" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(OSError):
        get(port, timeout=5)
    for sock in held:
        sock.close()


def test_a_stop_that_races_the_loops_own_close_never_writes_to_a_closed_descriptor():
    """The serving loop wakes every second on its own; when it sees the stop flag before
    ``stop`` pulls the wake-up trigger, it closes the trigger first. Pulling it then wrote
    to a closed descriptor (EBADF in CI), or to whatever file took its number since. Here
    the pull is held until the loop has had time to close everything."""
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: {})
    server.start()
    pull = server._server.pull_trigger
    serving = server._thread

    def late_pull() -> None:
        serving.join(timeout=2.5)  # the loop's one-second wake-up comes first
        pull()

    server._server.pull_trigger = late_pull  # type: ignore[method-assign]
    server.stop()
    assert not serving.is_alive()
