"""A node's engine that hangs instead of refusing (its dockerd frozen, its host gone
without a reset): the follower of its events must not wait on it for ever. Each reconnect
of the watcher starts a follower per node: one stuck in its request would stay, one more
each time, and nobody would hear that the node's events are not read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from controller.observe.gateway import EngineError
from controller.observe.swarm import SwarmEngine


class Frozen(ThreadingHTTPServer):
    """An engine that answered once (the client asked its version) and then froze: it
    accepts connections and never answers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thawed = threading.Event()
        self.answered = 0


class _Handler(BaseHTTPRequestHandler):
    server: Frozen

    def do_GET(self) -> None:
        if self.path.endswith("/version") and not self.server.answered:
            self.server.answered += 1
            body = json.dumps({"ApiVersion": "1.41", "Version": "24.0.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.server.thawed.wait(60)  # frozen: no answer at all

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def frozen() -> Iterator[Frozen]:
    server = Frozen()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.thawed.set()
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
def test_a_frozen_nodes_events_fail_within_the_engines_timeout(frozen: Frozen) -> None:
    port = frozen.server_address[1]
    engine = SwarmEngine(node_engines={"n2": f"tcp://127.0.0.1:{port}"}, timeout=1.0)
    engine._node_engine("n2")._client()  # it answered once: the client is made
    outcome: list[object] = []

    def open_events() -> None:
        try:
            outcome.append(engine.local_events("obs", "n2"))
        except EngineError as exc:
            outcome.append(exc)

    opener = threading.Thread(target=open_events, daemon=True)
    opener.start()
    opener.join(30)  # generous: the engine's timeout is 1 s
    try:
        assert not opener.is_alive(), "the node's events request waits for ever"
        (found,) = outcome
        assert isinstance(found, EngineError), found
    finally:
        frozen.thawed.set()
        engine.close()
