"""What the bulk-import suites share: a programme with a capped and budgeted bill campaign,
events as the API takes them and as file rows, and a second empty database to compare with."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select

from support import fast
from support.event_programme import CAMPAIGNS
from tally.accounts import service as accounts
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.events.models import RuleCounter, StoredEvent
from tally.ledger.models import Wallet
from tally.schema import metadata, migrate
from tally.tiers.models import MemberTier

BILLS: dict[str, Any] = {
    "code": "BILLS",
    "names": {"zh-CN": "话费返积分", "en": "Points on bills"},
    "on": ["bill_paid"],
    "caps": [{"per": "member", "period": "month", "points": 150}],
    "budget": {"points": 400},
    "rules": [
        {
            "code": "double",
            "priority": 80,
            "when": "event.amount >= 20",
            "award": {"points_per": {"amount": "1.00", "points": 2}},
        }
    ],
}
IMPORT_CAMPAIGNS = [*CAMPAIGNS, BILLS]
COLUMNS = ["type", "event_id", "member_id", "occurred_at", "amount", "currency", "channel"]


def api_event(row: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/events`` body of a file row."""
    body: dict[str, Any] = {
        key: row[key] for key in ("type", "event_id", "occurred_at") if row.get(key) is not None
    }
    body["member_id"] = int(row["member_id"])
    if row.get("amount") is not None:
        body["amount"] = {"value": row["amount"], "currency": row["currency"]}
    if row.get("channel") is not None:
        body["channel"] = row["channel"]
    if row.get("refers_to") is not None:
        body["refers_to"] = row["refers_to"]
    attributes = {
        key.removeprefix("attr."): value
        for key, value in row.items()
        if key.startswith("attr.") and value is not None
    }
    if attributes:
        body["attributes"] = {
            name: int(value) if name == "score" else value for name, value in attributes.items()
        }
    return body


def write_rows(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """``rows`` (text cells) as a CSV or Parquet file of ``columns``, by ``path``'s suffix."""
    frame = pl.DataFrame(
        {name: [row.get(name) for row in rows] for name in columns},
        schema=dict.fromkeys(columns, pl.String),
    )
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path


def stored(database: Database) -> dict[str, tuple[Any, ...]]:
    """Every stored event's outcome, by event id (what must match between two paths)."""
    with database.read() as session:
        return {
            row.event_id: (
                row.source,
                row.type,
                row.member_id,
                row.occurred_at,
                row.amount_minor,
                row.currency,
                row.channel,
                row.payload,
                row.points,
                row.growth,
                row.outcome,
                row.programme_version,
                row.transaction_id is not None,
            )
            for row in session.scalars(select(StoredEvent))
        }


def balances(database: Database) -> dict[int, tuple[int, int]]:
    with database.read() as session:
        return {
            wallet.member_id: (wallet.available, wallet.seq)
            for wallet in session.scalars(select(Wallet))
        }


def tiers(database: Database) -> dict[int, tuple[str, int]]:
    with database.read() as session:
        return {
            row.member_id: (row.tier_code, row.lifetime_growth)
            for row in session.scalars(select(MemberTier))
        }


def counters(database: Database) -> dict[str, int]:
    with database.read() as session:
        return {row.key: row.used for row in session.scalars(select(RuleCounter))}


@pytest.fixture(scope="session")
def _second_postgres(request: pytest.FixtureRequest) -> Iterator[Database]:
    server = request.getfixturevalue("postgres_server")
    db = Database(build_engine(server.create_database("tally_import_tests"), pool_size=5))
    migrate(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def second_database(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Database]:
    """Another migrated, empty database of the same dialect as ``database``."""
    if dialect == "sqlite":
        path = tmp_path / "second.db"
        shutil.copy(sqlite_template, path)
        db = Database(build_engine(f"sqlite:///{path}"))
        yield db
        db.dispose()
        return
    db = request.getfixturevalue("_second_postgres")
    fast.empty_postgres(db.engine, [table.name for table in metadata().sorted_tables])
    with db.write() as session:
        accounts.open_system(session)
    yield db
