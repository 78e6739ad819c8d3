"""The SQLite checkpointer copies the write-ahead log into the database file on its own thread,
while writers go on committing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tally.db.checkpointer import Checkpointer

PAGE = 4096


def test_the_log_is_copied_back_while_writers_commit(tmp_path: Path) -> None:
    path = tmp_path / "tally.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies
    writer.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT)")
    for index in range(200):
        writer.execute("INSERT INTO rows (body) VALUES (?)", ("x" * 500 + str(index),))
    # The rows (about 25 pages) are in the log; the database file has not grown to hold them.
    assert path.stat().st_size <= 2 * PAGE
    assert Path(f"{path}-wal").stat().st_size > 25 * PAGE

    checkpointer = Checkpointer(str(path), interval=0.02)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and path.stat().st_size <= 25 * PAGE:
            writer.execute("INSERT INTO rows (body) VALUES ('more')")  # writers are not blocked
            time.sleep(0.01)
    finally:
        checkpointer.stop()

    assert path.stat().st_size > 25 * PAGE
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM rows").fetchone()[0] > 200
    reader.close()
    writer.close()
