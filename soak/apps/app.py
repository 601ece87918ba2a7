"""The Python services of the soak stack, one script with a role per service:
``python3 /apps/app.py api|worker|migrate|reporter``. Runs inside cc-pg15 (Debian's
Python 3.11 and psycopg2), not on the host.

Each service is steered by files in its control directory ``/ctl`` (a host directory the
fault injector writes; nothing is ever passed through a shell):

- ``say-*.txt``: printed on the service's own stdout as they are (then removed), in name
  order: how the injector puts real error lines in a service's log;
- ``slow``: the next start sleeps that many seconds before it serves (a slow start);
- ``sick``: the api's ``/health`` answers 500 while it exists (removed at start, so a
  restart fixes it: a hung process);
- ``notready``: the api's ``/ready`` (its declared probe) answers 503 (removed at start);
- ``oom``: the worker allocates memory until its cgroup's limit kills it;
- ``dbname``: the database the worker uses (a missing one: the runbook's fault);
- ``fail``: the next run of the migrate job fails (exit 1);
- ``crashloop``: every start of the reporter dies that many seconds later, for as long as
  the file exists (a crash loop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

CTL = Path("/ctl")
SAY_EVERY = 0.1  # seconds between looks for say-*.txt


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def take(name: str) -> str | None:
    """The content of a control file, which is removed (None: there is none)."""
    path = CTL / name
    try:
        text = path.read_text()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        path.unlink()
    return text


def present(name: str) -> bool:
    return (CTL / name).exists()


def say_loop() -> None:
    while True:
        for path in sorted(CTL.glob("say-*.txt")):
            try:
                text = path.read_text()
                path.unlink()
            except OSError:
                continue
            sys.stdout.write(text)
            sys.stdout.flush()
        time.sleep(SAY_EVERY)


def start(role: str, clear: tuple[str, ...]) -> None:
    """What every role does first: stop on SIGTERM, forget faults a restart fixes, honour
    a slow start, and begin printing what the injector asks for."""

    def stop(signum: int, frame: FrameType | None) -> None:
        out(f"{role}: shutting down on signal {signum}")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    for name in clear:
        take(name)
    threading.Thread(target=say_loop, name="say", daemon=True).start()
    slow = take("slow")
    if slow:
        seconds = float(slow.strip() or "0")
        out(f"{role}: warming caches for {seconds:g} s before serving")
        time.sleep(seconds)


def dsn(dbname: str | None = None) -> str:
    return (
        f"host=127.0.0.1 port={os.environ['DB_PORT']} user={os.environ['DB_USER']} "
        f"password={os.environ['DB_PASSWORD']} dbname={dbname or os.environ['DB_NAME']} "
        "connect_timeout=2"
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    kind = f"{type(exc).__module__}.{type(exc).__name__}".replace("builtins.", "")
    return f"{kind}: {text[0] if text else ''}"


# --- api ---------------------------------------------------------------------------------


def api() -> None:
    import psycopg2

    start("api", ("sick", "notready"))
    port = int(os.environ["API_PORT"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self.health()
            elif self.path == "/ready":
                ok = not present("notready")
                self.answer(200 if ok else 503, "ready" if ok else "not ready")
            elif self.path == "/items":
                self.items()
            else:
                self.answer(404, "not found")

        def health(self) -> None:
            if present("sick"):
                self.answer(500, "stuck")
                return
            try:
                with psycopg2.connect(dsn()) as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.close()
            except psycopg2.Error as exc:
                out(f"ERROR api: health check failed: {first_line(exc)}")
                self.answer(503, "database unavailable")
                return
            self.answer(200, "ok")

        def items(self) -> None:
            with psycopg2.connect(dsn()) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM jobs")
                row = cur.fetchone()
            conn.close()
            self.answer(200, str(row[0] if row else 0))
            out(f"api: GET /items 200 ({row[0] if row else 0} jobs)")

        def answer(self, code: int, body: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    out(f"api: listening on 127.0.0.1:{port}")
    server.serve_forever()


# --- worker ------------------------------------------------------------------------------


def worker() -> None:
    import psycopg2

    start("worker", ("oom",))
    conn: Any = None
    using = ""
    done = 0
    while True:
        if take("oom") is not None:
            out("worker: loading the nightly batch into memory")
            hoard: list[bytes] = []
            while True:
                hoard.append(b"\x01" * (16 << 20))
        wanted = ((CTL / "dbname").read_text().strip() if present("dbname") else "") or ""
        try:
            if conn is None or wanted != using:
                if conn is not None:
                    conn.close()
                conn = None
                conn = psycopg2.connect(dsn(wanted or None))
                conn.autocommit = True
                using = wanted
                with conn.cursor() as cur:
                    cur.execute(
                        "CREATE TABLE IF NOT EXISTS jobs (id serial PRIMARY KEY, at timestamptz)"
                    )
                out(f"worker: connected to database {wanted or os.environ['DB_NAME']}")
            with conn.cursor() as cur:
                cur.execute("INSERT INTO jobs (at) VALUES (now())")
            done += 1
            if done % 20 == 0:
                out(f"worker: processed {done} jobs (0 failed)")
        except psycopg2.Error as exc:
            out(f"ERROR worker: {first_line(exc)}")
            with contextlib.suppress(Exception):
                if conn is not None:
                    conn.close()
            conn = None
        time.sleep(1.0)


# --- migrate -----------------------------------------------------------------------------


def migrate() -> None:
    import psycopg2

    start("migrate", ())
    if take("fail") is not None:
        out("migrate: migration 0042_orders_index could not be applied; exit status 1")
        sys.exit(1)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = psycopg2.connect(dsn())
            break
        except psycopg2.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS jobs (id serial PRIMARY KEY, at timestamptz)")
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version int)")
    conn.close()
    out("migrate: schema at version 42, 0 errors, nothing left to apply")


# --- reporter ----------------------------------------------------------------------------

# Lines a naive grep for "error" or "fail" flags, and which mean that all is well.
HARMLESS = (
    "report: batch {n} done: 250 rows, 0 errors, error_rate=0.0",
    "report: retries=0 failures=0 warnings=0 errors=0",
    "report: no errors in the last 60 s (last error: none)",
    "report: timeouts=0 deadline_exceeded=0 refused=0",
    "INFO report: Errors: 0, Exceptions: 0, failed=0",
    'level=info msg="sync finished" errors=0 error_rate=0.0 batch={n}',
)


def reporter() -> None:
    start("reporter", ())
    loop = present("crashloop") and (CTL / "crashloop").read_text().strip()
    if loop:  # a crash loop: every start dies this many seconds later, while it lasts
        out("report: loading report definitions")
        time.sleep(float(loop))
        out("report: stopping with status 1")
        sys.exit(1)
    Path("/tmp/alive").write_text("yes\n")
    n = 0
    while True:
        out(HARMLESS[n % len(HARMLESS)].format(n=n))
        n += 1
        time.sleep(2.0)


ROLES = {"api": api, "worker": worker, "migrate": migrate, "reporter": reporter}

if __name__ == "__main__":
    ROLES[sys.argv[1]]()
