"""Flash sales under a burst: the process-wide board of items whose orders are refused for
reasons of the item itself (sold out, its sale not open), so that the next attempts at them are
answered by a read-only check instead of a write.

The board only routes: an item on it is checked by
:func:`tally.flows.flash_sales.quick_refusal`, which reads the item (and the member's count)
as committed and answers ``sold_out``, ``sale_not_open`` or ``limit_reached`` without writing
or locking anything, or takes it off the board when none applies. A mark never answers on its
own, so a stale one (stock put back by another process, a job or the console) costs one read,
never a wrong ``sold_out`` (ADR 29).
"""

from __future__ import annotations

import threading


class Board:
    """Item codes marked hot: their last order attempt was refused by the item itself."""

    #: At most this many items are remembered (a burst concerns a handful).
    MAX_ITEMS = 1024

    def __init__(self) -> None:
        self._codes: dict[str, None] = {}
        self._lock = threading.Lock()

    def mark(self, code: str) -> None:
        """Remember ``code`` as hot (the oldest mark goes when the board is full)."""
        with self._lock:
            self._codes.pop(code, None)
            self._codes[code] = None
            while len(self._codes) > self.MAX_ITEMS:
                self._codes.pop(next(iter(self._codes)))

    def clear(self, code: str) -> None:
        """Forget ``code``: its orders go straight to the writer again."""
        with self._lock:
            self._codes.pop(code, None)

    def is_marked(self, code: str) -> bool:
        """Whether orders of ``code`` are checked read-only first."""
        return code in self._codes


#: The board of this process.
BOARD = Board()
