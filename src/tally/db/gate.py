"""One SQLite writer at a time, queued instead of polling.

SQLite lets one transaction write at a time; others wait in its busy handler, which sleeps in
growing steps (up to 100 ms) and wrecks latency under load. Writers of one database therefore
queue on a lock — a thread lock within a process and an ``flock`` on a file beside the database
across worker processes — and the kernel wakes the next one the moment the lock is free.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteGate:
    """A lock that writers of one SQLite database take around each write transaction."""

    def __init__(self, database_path: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = Path(f"{database_path}.write-lock") if database_path else None
        self._fd: int | None = None
        self._pid = -1

    def _descriptor(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the gate for the duration of the block."""
        with self._thread_lock:
            fd = self._descriptor()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
