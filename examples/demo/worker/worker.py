"""Demo worker: writes a heartbeat row to PostgreSQL every two seconds.

It keeps running when the database goes away and logs each failure the way
psycopg2 reports it, so the controller has real errors to read.
"""

import logging
import os
import sys
import time

import psycopg2

logging.basicConfig(
    stream=sys.stderr,
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
log = logging.getLogger("worker")
DSN = os.environ["DATABASE_URL"]


def beat() -> None:
    with psycopg2.connect(DSN, connect_timeout=2) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS heartbeat"
            " (id serial PRIMARY KEY, at timestamptz DEFAULT now())"
        )
        cur.execute("INSERT INTO heartbeat DEFAULT VALUES")


def main() -> None:
    log.info("worker started")
    while True:
        try:
            beat()
        except psycopg2.Error as exc:
            log.error("heartbeat failed: %s", str(exc).strip())
        time.sleep(2)


if __name__ == "__main__":
    main()
