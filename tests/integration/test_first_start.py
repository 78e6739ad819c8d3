"""Several processes starting at once on a new database migrate it once (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from conftest import SECRET
from support.postgres import PostgresServer
from tally.schema import alembic_config, metadata

STARTERS = 3
# Each starter waits for the start file (polled: separate processes share no clock to
# inject), then does what every start does first: open the database, migrating it.
STARTER = """
import sys, time
from pathlib import Path
start = Path(sys.argv[1])
deadline = time.monotonic() + 60
while not start.exists():
    if time.monotonic() > deadline:
        raise SystemExit("no start")
    time.sleep(0.001)
from tally.cli.main import app
app(["db", "upgrade"], prog_name="tally")
"""


@pytest.fixture
def new_database(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a database nothing has created a table in yet."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"fresh_{uuid.uuid4().hex[:12]}")


def test_processes_starting_at_once_migrate_a_new_database_once(
    new_database: str, tmp_path: Path
) -> None:
    start = tmp_path / "start"
    env = {**os.environ, "TALLY_DATABASE_URL": new_database, "TALLY_SECRET_KEY": SECRET}
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(STARTERS)
    ]
    start.touch()
    results = [starter.communicate(timeout=180) for starter in starters]
    for starter, (out, err) in zip(starters, results, strict=True):
        assert starter.returncode == 0, err
        assert "database is up to date" in out
        assert "already exists" not in err
    engine = create_engine(new_database)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            tables = set(inspect(connection).get_table_names())
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    finally:
        engine.dispose()
    assert versions == [(head,)]
    assert set(metadata().tables) <= tables
