"""The keyed work queue: one key at a time, no duplicates, nothing lost."""

import threading

from controller.remediate.failures import FailureBackoff
from controller.remediate.queue import WorkQueue


def test_a_key_waiting_in_the_queue_is_not_added_twice():
    q = WorkQueue(FailureBackoff())
    assert q.add("web")
    assert not q.add("web")
    assert q.depth == 1


def test_a_key_being_processed_is_not_handed_out_again_until_done():
    q = WorkQueue(FailureBackoff())
    q.add("web")
    assert q.get(timeout=0) == "web"
    assert q.add("web")  # accepted: it will be processed again after this round
    assert q.get(timeout=0) is None  # but not in parallel
    q.done("web")
    assert q.get(timeout=0) == "web"


def test_different_keys_are_processed_in_parallel():
    q = WorkQueue(FailureBackoff())
    for key in ("db", "web", "worker"):
        q.add(key)
    got = {q.get(timeout=0) for _ in range(3)}
    assert got == {"db", "web", "worker"}
    assert q.processing == frozenset(got)


def test_shutdown_releases_waiting_workers_and_drops_queued_keys():
    q = WorkQueue(FailureBackoff())
    results = []
    worker = threading.Thread(target=lambda: results.append(q.get()))
    worker.start()
    q.shutdown()
    worker.join(5)
    assert results == [None]
    assert not q.add("web")


def test_wait_idle_returns_when_the_last_key_is_done():
    q = WorkQueue(FailureBackoff())
    q.add("web")
    key = q.get(timeout=0)
    assert not q.wait_idle(timeout=0)
    q.done(key)  # type: ignore[arg-type]
    assert q.wait_idle(timeout=0)
