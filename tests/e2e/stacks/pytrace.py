"""Logs one real chained traceback the way an app's settings loader would, then idles."""

import logging
import os
import signal
import sys

logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("settings")


def load() -> str:
    try:
        return os.environ["PAYMENTS_API_URL"]
    except KeyError as exc:
        raise RuntimeError("cannot configure the payments client") from exc


try:
    load()
except RuntimeError:
    log.exception("settings failed")
sys.stderr.flush()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
