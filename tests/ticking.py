"""A Python thread that ticks while C++ runs: how tests see that the GIL was released."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable


def ticker_during(call: Callable[[], object]) -> tuple[float, int, float]:
    """Run ``call`` while a Python thread ticks every millisecond.

    Returns (duration of the call, ticks seen during it, longest pause between two ticks).
    """
    stamps: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    start = time.perf_counter()
    call()
    end = time.perf_counter()
    stop.set()
    ticker.join()
    during = [start, *(t for t in stamps if start <= t <= end), end]
    return end - start, len(during) - 2, max(b - a for a, b in itertools.pairwise(during))
