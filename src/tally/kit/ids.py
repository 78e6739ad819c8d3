"""Identifiers: time-ordered UUIDs (version 7) for ledger records."""

from __future__ import annotations

import os
import threading
import time
import uuid

_COUNTER = 0xFFF  # the 12 bits after the milliseconds (RFC 9562's rand_a)
_lock = threading.Lock()
_last = (0, 0)  # the milliseconds and counter of the last id made in this process


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter, then random bits.

    Ids made in one process strictly increase (RFC 9562 §6.2, method 1): within a millisecond
    the counter, started at a random value in its lower half, counts up; when it runs out, or
    the clock steps back, the milliseconds of the last id carry on. So the events of one batch
    sort in the order they were made, which is the order a simulation replays them in.
    """
    global _last  # noqa: PLW0603 - the process's one sequence
    now = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        millis, counter = _last
        if now > millis:
            millis, counter = now, (rand >> 68) & (_COUNTER >> 1)
        elif counter < _COUNTER:
            counter += 1
        else:
            millis, counter = millis + 1, 0
        _last = (millis, counter)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
