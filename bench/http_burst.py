"""A burst of requests at the controller's HTTP server and at the standard library's, in
one run: p50, p99 and the worst latency of each, how many failed, and the ratio.

    .venv/bin/python bench/http_burst.py [--requests 10000] [--concurrency 100]
        [--path /healthz] [--idle 0]

Each server runs in a process of its own (so the client does not share its interpreter)
on a loopback port, with the same WSGI application and a registry the size of a real
controller's (the metrics of 20 services declared). "stdlib" is the server the
controller had before issue 20: wsgiref's WSGIServer with ThreadingMixIn (a thread per
connection, a listen backlog of 5, no read timeout). The client opens a new connection
per request (HTTP/1.0, as a probe or a scraper without keep-alive does), with at most
``--concurrency`` requests in flight, and times each from connect to the last byte; a
request that fails or takes over 10 s counts as failed. ``--idle N`` first opens N
connections that send nothing and keeps them open through the burst (a slow or half-open
client); the standard library's server then holds a thread for each.

Loopback only; bounded in count and time; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstat import free_port  # noqa: E402

TIMEOUT = 10.0


# --- the servers (run as child processes) --------------------------------------------------


def _registry():  # type: ignore[no-untyped-def]
    from prometheus_client import CollectorRegistry

    from controller.metrics import Metrics
    from controller.model import DetectionSettings
    from tests.fakes import spec

    registry = CollectorRegistry()
    metrics = Metrics(registry, "bench")
    services = {f"svc{n}": spec(f"svc{n}") for n in range(20)}
    metrics.declare(services, DetectionSettings().patterns)
    return registry


def serve(kind: str, port: int) -> None:
    from controller.http import StatusServer, application

    registry = _registry()
    document = {"services": [], "issues": []}
    if kind == "ours":
        server = StatusServer("127.0.0.1", port, registry, lambda: True, lambda: document)
        server.start()
    else:
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class Threaded(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        app = application(registry, lambda: True, lambda: document)
        httpd = make_server("127.0.0.1", port, app, Threaded, Quiet)
        import threading

        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin


# --- the client ----------------------------------------------------------------------------


async def _one(port: int, path: str) -> float | None:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), TIMEOUT)  # to the server's close
        writer.close()
    except (TimeoutError, OSError):
        return None
    if not body.startswith(b"HTTP/1.") or b" 200 " not in body[:20]:
        return None
    return time.perf_counter() - started


async def burst(port: int, path: str, requests: int, concurrency: int) -> list[float | None]:
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> float | None:
        async with gate:
            return await _one(port, path)

    return await asyncio.gather(*(limited() for _ in range(requests)))


def _idle(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /metr")  # half a request, never finished
        held.append(sock)
    return held


def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        held = _idle(port, args.idle)
        asyncio.run(burst(port, args.path, 200, 20))  # warm up
        started = time.perf_counter()
        times = asyncio.run(burst(port, args.path, args.requests, args.concurrency))
        took = time.perf_counter() - started
        for sock in held:
            sock.close()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(30)
    ok = sorted(t for t in times if t is not None)
    failed = len(times) - len(ok)
    if not ok:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "failed": failed}
    quantiles = statistics.quantiles(ok + [TIMEOUT] * failed, n=100)
    return {
        "p50": quantiles[49] * 1000,
        "p99": quantiles[98] * 1000,
        "max": (ok[-1] if not failed else TIMEOUT) * 1000,
        "failed": failed,
        "rate": len(times) / took,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--path", default="/healthz")
    p.add_argument("--idle", type=int, default=0)
    p.add_argument("--serve", choices=["ours", "stdlib"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    args.requests = min(args.requests, 100_000)
    print(
        f"{args.requests} requests of GET {args.path}, {args.concurrency} at once, a new "
        f"connection each, {args.idle} idle connections held"
    )
    results = {kind: measure(kind, args) for kind in ("ours", "stdlib")}
    print(f"{'server':<8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'failed':>7} {'req/s':>7}")
    for kind, r in results.items():
        print(
            f"{kind:<8} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} "
            f"{int(r['failed']):>7} {r.get('rate', 0):>7.0f}"
        )
    ratio = results["stdlib"]["p99"] / results["ours"]["p99"]
    print(f"p99 ratio (stdlib / ours): {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
