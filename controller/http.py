"""The controller's HTTP endpoints, on 127.0.0.1 by default.

``/metrics`` is prometheus-client's own WSGI exposition (content negotiation between the
text format and OpenMetrics, gzip when the scraper accepts it, ``?name[]=`` filters), so
what Prometheus and promtool expect is kept by the library that defines it, not by us.
Beside it: ``/healthz`` the process lives, ``/readyz`` the engine answered recently and a
pass completed (503 otherwise), ``/status`` the issues document as JSON, and the status
page for a person: ``/`` and ``/service/<name>``, HTML drawn from the same document by
the ``Pages`` it is given (``controller.status.page``, a layer above: the CLI wires it).
Every path answers HEAD as it answers GET, without the body (load balancers and uptime
checkers use it). ``POST /-/reload`` (Prometheus' path) reloads the desired state and
answers when it is done: 200, or 500 with the reason it was refused (the state in force
kept).

The page's links are relative (``./``, ``../``), so it works behind a reverse proxy on a
sub-path; a proxy's ``X-Forwarded-Prefix`` (a path of plain characters, else ignored)
makes them absolute paths under it. The page polls itself: no connection is held open,
so a tab left open costs a request a second, never one of the ``THREADS``.

Served by waitress, a server made for it (the standard library's had a listen backlog of
5, no read timeout and a thread per connection: issue 20): one thread reads requests for
every connection (a half-sent request or a silent client costs a socket and a buffer,
never a thread) and hands only complete ones to a pool of ``THREADS``; at most
``CONNECTIONS`` connections are open, and never more than half the process's file
descriptors (beyond that the kernel's backlog of ``BACKLOG`` holds them), one idle or
stalled for ``IDLE_SECONDS`` is closed, and a request head is at most
``MAX_HEADER_BYTES``. ``listen_address`` decides where it may listen: a name
must resolve to loopback, anything else needs the address itself.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import resource
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app
from waitress import wasyncore
from waitress.server import TcpWSGIServer, create_server

_TEXT = "text/plain; charset=utf-8"
THREADS = 4  # requests answered at once (a scrape, a probe and a person's status)
CONNECTIONS = 4096  # connections open at once (at most half the descriptors); more wait
BACKLOG = 2048  # the kernel's queue of connections not yet accepted
IDLE_SECONDS = 10  # a connection silent this long (half-sent, idle, stalled) is closed
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024  # no body is ever read (GET, HEAD, and the reload's POST)
RELOAD_PATH = "/-/reload"

# a reload: (worked, one line: what is in force or why it was refused)
Reload = Callable[[], tuple[bool, str]]
_HTML = "text/html; charset=utf-8"
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*/?")  # X-Forwarded-Prefix we take: a plain path
_SERVICE = "/service/"


class Pages(Protocol):
    """The status page's HTML from the issues document (``controller.status.page``).
    ``root`` is the overview's address as the page's links must say it."""

    @property
    def content_security_policy(self) -> str: ...

    def overview(self, doc: dict[str, Any], root: str) -> str: ...

    def service(self, doc: dict[str, Any], name: str, root: str) -> str | None:
        """None: the document has no service ``name``."""
        ...


class ListenRefused(Exception):
    """Where ``--metrics-host`` asks to listen is refused; the message is one line."""


def listen_address(host: str) -> tuple[str, str | None]:
    """The address to listen on for ``host``, and a warning to log (None: nothing to say).

    An IP address is taken as it is: it was written on purpose (every interface, for
    ``0.0.0.0`` or ``::``, comes with a warning). A name must resolve to loopback only
    (``localhost``): to listen beyond loopback, a person gives the address itself.
    """
    literal = host.strip("[]")
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        pass
    else:
        if address.is_unspecified:
            return literal, (
                f"listening on every interface ({literal}): /metrics and /status (every "
                "issue, what the controller does) are open to the network"
            )
        return literal, None
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ListenRefused(f"--metrics-host {host}: cannot resolve it ({why})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    outside = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if outside:
        raise ListenRefused(
            f"--metrics-host {host}: resolves to {', '.join(outside)}, beyond loopback; to "
            f"listen there, give the address itself (--metrics-host {outside[0]})"
        )
    return sorted(addresses, key=lambda a: ":" in a)[0], None  # IPv4 first


class StatusServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
        *,
        reload: Reload | None = None,
        pages: Pages | None = None,
        idle_seconds: int = IDLE_SECONDS,
        connections: int | None = None,
    ) -> None:
        if connections is None:  # what is left of the descriptors: log follows, the engine
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            connections = max(100, min(CONNECTIONS, soft // 2))
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # a busy moment: no news
        self._map: dict[int, Any] = {}
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        server = create_server(
            application(registry, ready, status, reload, pages),
            map=self._map,
            listen=listen,
            threads=THREADS,
            connection_limit=connections,
            backlog=BACKLOG,
            channel_timeout=idle_seconds,
            cleanup_interval=1,
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True,  # select() stops at 1024 descriptors
            asyncore_loop_timeout=1,
            ident="compose-controller",
        )
        assert isinstance(server, TcpWSGIServer)  # one address: one socket
        self._server = server
        self._stopping = threading.Event()
        self._closing = threading.Lock()  # the trigger is pulled only while it is open
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.getsockname()
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            with self._closing:  # the loop may have seen the flag and closed the trigger:
                if not self._closed:  # its descriptor number may be another file's by now
                    self._server.pull_trigger()  # wake the loop now
            self._thread.join(10)
        else:  # never started: close here
            self._close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            wasyncore.loop(timeout=1.0, use_poll=True, map=self._map, count=1)
        self._close()

    def _close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
            wasyncore.close_all(self._map, ignore_all=True)
        self._server.task_dispatcher.shutdown(timeout=5)


def application(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    status: Callable[[], dict[str, Any]],
    reload: Reload | None = None,
    pages: Pages | None = None,
) -> WSGIApplication:
    """The WSGI application of every endpoint (``StatusServer`` serves it); without
    ``reload`` there is no ``/-/reload``, without ``pages`` (a benchmark, a test of the
    other endpoints) ``/`` is not found."""
    metrics = make_wsgi_app(registry)

    def plain(
        code: str, body: bytes, content_type: str = _TEXT, allow: str = ""
    ) -> WSGIApplication:
        def answer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            headers = [("Content-Type", content_type)]
            start_response(code, [("Allow", allow), *headers] if allow else headers)
            return [body]

        return answer

    def reloaded() -> WSGIApplication:
        assert reload is not None
        ok, line = reload()
        code = "200 OK" if ok else "500 Internal Server Error"
        return plain(code, f"{line}\n".encode())

    def page(code: str, html: str, policy: str) -> WSGIApplication:
        headers = [
            ("Content-Type", _HTML),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]

        def answer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response(code, headers)
            return [html.encode()]

        return answer

    def status_page(path: str, prefix: str | None) -> WSGIApplication:
        assert pages is not None
        policy = pages.content_security_policy
        if path == "/":
            return page("200 OK", pages.overview(status(), prefix or "./"), policy)
        name = path.removeprefix(_SERVICE).encode("latin-1").decode("utf-8", "replace")
        if not name or "/" in name:
            return plain("404 Not Found", b"not found\n")
        html = pages.service(status(), name, prefix or "../")
        if html is None:
            return plain("404 Not Found", b"no such service\n")
        return page("200 OK", html, policy)

    def route(path: str, prefix: str | None) -> WSGIApplication:
        if pages is not None and (path == "/" or path.startswith(_SERVICE)):
            return status_page(path, prefix)
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
        path = environ.get("PATH_INFO", "")
        if reload is not None and path == RELOAD_PATH:
            if method == "POST":
                return reloaded()(environ, start_response)
            refused = plain("405 Method Not Allowed", b"method not allowed\n", allow="POST")
            return refused(environ, start_response)
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", _TEXT)]
            )
            return [b"method not allowed\n"]
        inner = route(path, forwarded_prefix(environ))
        if method == "GET":
            return inner(environ, start_response)
        return _head(inner, environ, start_response)

    return app


def forwarded_prefix(environ: WSGIEnvironment) -> str | None:
    """The overview's absolute path a reverse proxy says (``X-Forwarded-Prefix: /ctl``
    gives ``/ctl/``); None without the header or for one that is not a plain path (a
    ``//host`` would point the links elsewhere)."""
    said = str(environ.get("HTTP_X_FORWARDED_PREFIX", "")).strip()
    if not said or not _PREFIX.fullmatch(said):
        return None
    return said.rstrip("/") + "/"


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
