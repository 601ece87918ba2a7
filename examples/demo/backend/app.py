"""Demo backend: a small HTTP API in front of PostgreSQL.

GET /health answers 200 when the database answers `SELECT 1`, else 503.
GET /items lists the rows the worker wrote. Errors are logged the way a real
service logs them (Python logging, psycopg2's own messages, tracebacks).
"""

import logging
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

logging.basicConfig(
    stream=sys.stderr,
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
log = logging.getLogger("backend")
DSN = os.environ["DATABASE_URL"]
PORT = int(os.environ.get("BACKEND_PORT", "18080"))


def query(sql: str) -> list[tuple]:
    with psycopg2.connect(DSN, connect_timeout=2) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._health()
        elif self.path == "/items":
            self._items()
        else:
            self._reply(404, b"not found\n")

    def _health(self) -> None:
        try:
            query("SELECT 1")
        except psycopg2.Error as exc:
            log.error("health check failed: %s", str(exc).strip())
            self._reply(503, b"database unavailable\n")
            return
        self._reply(200, b"ok\n")

    def _items(self) -> None:
        try:
            rows = query("SELECT id, at FROM heartbeat ORDER BY id DESC LIMIT 10")
        except psycopg2.Error:
            log.exception("listing items failed")
            self._reply(500, b"error\n")
            return
        self._reply(200, "".join(f"{i} {at}\n" for i, at in rows).encode())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        if self.path != "/health":
            log.info("%s %s", self.address_string(), format % args)


def main() -> None:
    log.info("starting backend on 127.0.0.1:%d", PORT)
    try:
        query("SELECT 1")
        log.info("database is reachable")
    except psycopg2.Error as exc:
        log.error("database is not reachable at start: %s", str(exc).strip())
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
