"""What every command shares: settings, a migrated database, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer

from tally.config import Settings, get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.errors import TallyError
from tally.programme import runtime
from tally.programme.domain import Programme
from tally.schema import migrate


@contextmanager
def open_database(settings: Settings | None = None) -> Iterator[Database]:
    """The configured database, created and migrated if needed; closed when the block ends."""
    settings = settings or get_settings()
    db = Database(build_engine(settings.database_url, pool_size=5))
    try:
        migrate(db.engine)
        yield db
    finally:
        db.dispose()


def programme_in_force(settings: Settings | None = None, at: datetime | None = None) -> Programme:
    """The programme in force at ``at`` (default now; the default one before any file is
    applied)."""
    settings = settings or get_settings()
    with open_database(settings) as db, db.read() as session:
        return runtime.effective(session, settings, at)


def emit(value: Any) -> None:
    """Print ``value`` as JSON."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(error: TallyError) -> None:
    """Print a Tally error and exit non-zero."""
    typer.echo(f"error [{error.code}]: {error.detail}", err=True)
    raise typer.Exit(code=2)
