"""Saving the issues files: debounced for counts, at once for news, never lost on stop."""

from __future__ import annotations

import threading
import time

from controller.issues.saver import DebouncedSaver


class Saves:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.count += 1


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_many_requests_within_the_interval_are_one_save_and_news_is_saved_at_once():
    saves = Saves()
    frozen = 1000.0  # the saver's clock never moves: the interval never passes
    saver = DebouncedSaver(saves, interval=3600.0, clock=lambda: frozen)
    saver.start()
    saver.request()
    assert wait_until(lambda: saves.count == 1)  # the first change goes out at once
    for _ in range(100):
        saver.request()  # within the interval: they wait for one later save
    saver.now()  # news: saved in the caller's thread, at once
    assert saves.count == 2
    saver.request()
    saver.stop()  # the pending change is saved on the way out
    assert saves.count == 3


def test_a_request_is_saved_once_the_interval_has_passed():
    saves = Saves()
    saver = DebouncedSaver(saves, interval=0.05)
    saver.start()
    saver.now()
    saver.request()
    assert wait_until(lambda: saves.count == 2)
    saver.stop()
    assert saves.count == 2  # nothing was pending


def test_requests_while_a_save_is_due_do_not_wake_the_saver_each_time():
    """A flood asks for a save after every read; the saver thread sleeps until its time."""
    saves = Saves()
    looks = []  # the saver thread reads the clock each time it wakes

    def clock() -> float:
        looks.append(1)
        return 1000.0  # never moves: the interval never passes

    saver = DebouncedSaver(saves, interval=3600.0, clock=clock)
    saver.start()
    saver.request()
    assert wait_until(lambda: saves.count == 1)
    saver.request()  # due now: the thread waits out the interval
    assert wait_until(lambda: len(looks) >= 3)
    before = len(looks)
    for _ in range(30):
        saver.request()
        time.sleep(0.005)  # room for a woken thread to run
    assert len(looks) == before
    saver.stop()
    assert saves.count == 2
