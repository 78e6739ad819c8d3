"""Copying SQLite's write-ahead log back into the database file off the request path.

By default SQLite checkpoints inside the commit that fills the log past 1,000 pages: that commit
then writes and syncs megabytes while the writer (and, in Tally, its worker's event loop)
waits. ``tally serve`` instead runs a passive checkpoint every fraction of a second on a thread
of its own (SQLite releases the GIL while it works), which never blocks writers or readers; the
commit-time checkpoint stays as a backstop at a larger size, should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3

from tally.kit.periodic import Periodic

log = logging.getLogger("tally.db")

# Pages (of 4 KiB) the log may hold before a commit checkpoints it itself.
BACKSTOP_PAGES = 10_000


class Checkpointer:
    """Checkpoints one SQLite database every ``interval`` seconds on a thread of its own."""

    def __init__(self, path: str, interval: float = 0.2) -> None:
        self._connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
        self._thread = Periodic("tally-checkpoint", interval, self._checkpoint)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
        self._connection.close()

    def _checkpoint(self) -> None:
        try:
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as error:  # another checkpoint is running
            log.debug("checkpoint skipped: %s", error)
