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
import threading

log = logging.getLogger("tally.db")

# Pages (of 4 KiB) the log may hold before a commit checkpoints it itself.
BACKSTOP_PAGES = 10_000


class Checkpointer:
    """A daemon thread that checkpoints one SQLite database every ``interval`` seconds."""

    def __init__(self, path: str, interval: float = 0.2) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError as error:  # another checkpoint is running
                    log.debug("checkpoint skipped: %s", error)
        finally:
            connection.close()
