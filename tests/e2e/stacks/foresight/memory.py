"""A process whose memory does one thing, for the foresight tests and benchmark.

    python3 memory.py leak START_MIB RATE_MIB_PER_S
    python3 memory.py sawtooth LOW_MIB HIGH_MIB PERIOD_S

``leak`` holds START_MIB at once, then RATE more every second, until the kernel kills it
at its limit; ``sawtooth`` climbs from LOW to HIGH over PERIOD seconds and gives it all
back, again and again, as a garbage collector does. Memory is held in 256 KiB chunks of
real bytes (above glibc's mmap threshold: freed chunks go back to the kernel at once).
Each second it prints how much it holds, with the time, so a test can read its progress.
"""

import sys
import time

CHUNK = 256 * 1024


def chunk() -> bytearray:
    return bytearray(b"x" * CHUNK)  # written, so it is resident


def hold(held: list[bytearray], mib: float) -> None:
    want = int(mib * 1024 * 1024 / CHUNK)
    while len(held) < want:
        held.append(chunk())
    del held[want:]


def main() -> None:
    mode, *numbers = sys.argv[1:]
    a, b, c = (float(n) for n in (*numbers, "0")[:3])
    held: list[bytearray] = []
    start = time.monotonic()
    last_print = 0.0
    while True:
        elapsed = time.monotonic() - start
        leaking = mode == "leak"
        target = a + b * elapsed if leaking else a + (b - a) * ((elapsed % c) / c)
        hold(held, target)
        if elapsed - last_print >= 1.0:
            last_print = elapsed
            print(f"{time.time():.3f} holds {len(held) * CHUNK / 1048576:.1f} MiB", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
