"""Releasing work on many threads at the same instant, for concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for ``i`` in ``range(count)`` on ``count`` threads released together.

    Each result is what ``work`` returned or the exception it raised.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> object:
        barrier.wait()
        try:
            return work(index)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
