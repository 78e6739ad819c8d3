"""Migration 0018 on a database with history: a ledger written before accounts existed (the
tables dropped again by a downgrade to 0017) gets every account — the system's, two per
partner, two per wallet — and each partner and system account's balance equal to its postings;
verify is clean."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from support.policy import policy_of
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import jobs
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners
from tally.schema import alembic_config, migrate

POLICY = policy_of(Settings())


@pytest.fixture
def engine(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of the parametrised dialect, migrated to the newest revision."""
    name = f"tally_accounts_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database(name)
    engine = build_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()
    if dialect != "sqlite":
        request.getfixturevalue("postgres_server").drop_database(name)


def _history(db: Database) -> tuple[int, int]:
    """Two partners, three members (one never touched); earns, a redemption, an adjustment,
    expiry. ``(members, partners)``."""
    now = utcnow()
    with db.write() as session:
        shop = Origin(partner_id=partners.create_partner(session, "SHOP", "Shop", now).id)
        food = Origin(partner_id=partners.create_partner(session, "FOOD", "Food", now).id)
        one, two, _three = (
            enrolment.enrol(session, Identity("phone", f"1380000000{n}"), {}, now)[0]
            for n in range(3)
        )
        ledger.earn(session, shop, one, 120, "e1", now, POLICY)
        ledger.earn(session, food, two, 40, "e2", now, POLICY, now + timedelta(days=1))
        ledger.redeem(session, food, one, 20, "r1", now, POLICY)
        ledger.adjust(session, Origin(staff_id=1), one, 7, "goodwill", now, POLICY)
    jobs.expire(db.write, now + timedelta(days=2))
    return 3, 2


def _balances(engine: Engine, query: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {code: int(total) for code, total in connection.execute(sa.text(query)) if total}


POSTED = (
    "SELECT account, SUM(amount) FROM postings WHERE account NOT LIKE 'member:%' GROUP BY account"
)
STRIPED = (
    "SELECT a.code, SUM(s.balance) FROM accounts a JOIN account_stripes s ON s.account_id = a.id"
    " GROUP BY a.code"
)


def test_the_backfill_gives_every_account_its_postings_balance(engine: Engine) -> None:
    db = Database(engine)
    members, partner_count = _history(db)
    posted = _balances(engine, POSTED)
    command.downgrade(alembic_config(engine), "0017")
    assert "accounts" not in sa.inspect(engine).get_table_names()

    command.upgrade(alembic_config(engine), "0018")

    assert _balances(engine, STRIPED) == posted
    assert posted == {
        "partner:1:issued": -120,
        "partner:2:issued": -40,
        "partner:2:redeemed": 20,
        "system:adjustments": -7,
        "system:expired": 40,
    }
    with engine.connect() as connection:
        kinds = connection.execute(
            sa.text(
                "SELECT owner_type, kind, COUNT(*) FROM accounts GROUP BY owner_type, kind"
                " ORDER BY owner_type, kind"
            )
        ).all()
        stripes = connection.execute(sa.text("SELECT DISTINCT stripe FROM account_stripes")).all()
    assert [tuple(row) for row in kinds] == [
        ("member", "available", members),
        ("member", "held", members),
        ("partner", "accepted", partner_count),
        ("partner", "issued", partner_count),
        ("system", "adjustments", 1),
        ("system", "breakage", 1),
        ("system", "expired", 1),
    ]
    assert [tuple(row) for row in stripes] == [(0,)]
    with db.read() as session:
        report = verify(session)
    assert report.ok, report.problems
    assert report.accounts == 2 * members + 2 * partner_count + 3
