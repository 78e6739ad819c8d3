"""Migration 0015 on a database with history: versions take effect from their apply, and existing
entries and lots are backfilled with the version then in force and its point value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from tally.db.engine import build_engine
from tally.schema import alembic_config

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of the parametrised dialect, migrated to the revision before 0015."""
    name = f"tally_migration_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database(name)
    engine = build_engine(url)
    command.upgrade(alembic_config(engine), "0014")
    yield engine
    engine.dispose()
    if dialect != "sqlite":
        request.getfixturevalue("postgres_server").drop_database(name)


def _content(amount: str) -> str:
    return json.dumps({"currency": {"point_value": {"amount": amount, "currency": "CNY"}}})


def test_existing_rows_get_the_version_then_in_force(engine: Engine) -> None:
    first, second = T0 + timedelta(days=10), T0 + timedelta(days=20)
    moments = {"before": T0, "first": first + timedelta(days=1), "second": second}
    with engine.begin() as connection:
        for version, applied_at, amount in ((1, first, "0.01"), (2, second, "0.005")):
            connection.execute(
                sa.text(
                    "INSERT INTO programme_versions (version, content, source_text, content_hash,"
                    " applied_by, applied_at) VALUES (:v, :c, '', '', 'ops', :at)"
                ),
                {"v": version, "c": _content(amount), "at": applied_at},
            )
        connection.execute(
            sa.text(
                "INSERT INTO members (id, status, created_at, updated_at)"
                " VALUES (1, 'active', :at, :at)"
            ),
            {"at": T0},
        )
        for name, moment in moments.items():
            entry = uuid.uuid4()
            connection.execute(
                sa.text(
                    "INSERT INTO journal_entries (id, kind, created_at, hash, reference)"
                    " VALUES (:id, 'earn', :at, '', :name)"
                ),
                {"id": entry.hex, "at": moment, "name": name},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO lots (member_id, entry_id, points, remaining, expires_at,"
                    " created_at) VALUES (1, :id, 5, 5, :exp, :at)"
                ),
                {"id": entry.hex, "at": moment, "exp": moment + timedelta(days=365)},
            )

    command.upgrade(alembic_config(engine), "0015")

    with engine.connect() as connection:
        versions = connection.execute(
            sa.text("SELECT version, effective_from, applied_at FROM programme_versions")
        ).all()
        assert all(effective == applied for _v, effective, applied in versions)
        entries = dict(
            connection.execute(
                sa.text("SELECT reference, programme_version FROM journal_entries")
            ).all()
        )
        assert entries == {"before": None, "first": 1, "second": 2}
        lots = connection.execute(
            sa.text(
                "SELECT e.reference, l.programme_version, l.value_points, l.value_minor,"
                " l.value_currency FROM lots l JOIN journal_entries e ON e.id = l.entry_id"
                " ORDER BY l.id"
            )
        ).all()
        assert [tuple(row) for row in lots] == [
            ("before", None, 1, 1, "CNY"),  # the built-in default: 1 point = 1 fen
            ("first", 1, 1, 1, "CNY"),
            ("second", 2, 10, 5, "CNY"),  # "0.005" CNY: 10 points = 5 fen
        ]
    command.downgrade(alembic_config(engine), "0014")  # and back, cleanly
    command.upgrade(alembic_config(engine), "0015")
