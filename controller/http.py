"""The controller's HTTP endpoints, on 127.0.0.1 by default.

``/metrics`` is prometheus-client's own WSGI exposition (content negotiation between the
text format and OpenMetrics, gzip when the scraper accepts it, ``?name[]=`` filters), so
what Prometheus and promtool expect is kept by the library that defines it, not by us.
Beside it: ``/healthz`` the process lives, ``/readyz`` the engine answered and a pass
completed (503 otherwise), ``/status`` the issues document as JSON. Every path answers
HEAD as it answers GET, without the body (load balancers and uptime checkers use it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app

_TEXT = "text/plain; charset=utf-8"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up shutdown


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the decision log


class StatusServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self._server = make_server(
            host, port, application(registry, ready, status), _Server, _Quiet
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a loop that never started
            self._server.shutdown()
        self._server.server_close()


def application(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    status: Callable[[], dict[str, Any]],
) -> WSGIApplication:
    """The WSGI application of every endpoint (``StatusServer`` serves it)."""
    metrics = make_wsgi_app(registry)

    def plain(code: str, body: bytes, content_type: str = _TEXT) -> WSGIApplication:
        def answer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response(code, [("Content-Type", content_type)])
            return [body]

        return answer

    def route(path: str) -> WSGIApplication:
        if path == "/metrics":
            return metrics
        if path == "/healthz":
            return plain("200 OK", b"ok\n")
        if path == "/readyz":
            ok = ready()
            return plain(
                *(("200 OK", b"ready\n") if ok else ("503 Service Unavailable", b"not ready\n"))
            )
        if path == "/status":
            return plain("200 OK", json.dumps(status(), indent=2).encode(), "application/json")
        return plain("404 Not Found", b"not found\n")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", _TEXT)]
            )
            return [b"method not allowed\n"]
        inner = route(environ.get("PATH_INFO", ""))
        if method == "GET":
            return inner(environ, start_response)
        return _head(inner, environ, start_response)

    return app


def _head(
    inner: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """HEAD: the GET's status and headers (its length too), no body."""
    caught: list[tuple[str, list[tuple[str, str]]]] = []

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        caught.append((status, headers))
        return lambda data: None

    body = b"".join(inner({**environ, "REQUEST_METHOD": "GET"}, keep))
    status, headers = caught[-1]
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return []
