"""Events processed set-based: a budget never overrun by writers racing on PostgreSQL, a batch
of many events in as many statements as a batch of few, the ledger verified after both."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from support.event_programme import CAMPAIGNS, apply_campaigns
from support.race import race
from tally.config import Settings
from tally.db.session import Database
from tally.events.models import RuleCounter, StoredEvent
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Programme
from tally.rules import engine

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)


@pytest.fixture
def world(database: Database, settings: Settings) -> tuple[Programme, Policy, int]:
    programme = apply_campaigns(database, CAMPAIGNS)
    with database.write() as session:
        partner = partners.create_partner(session, "SHOP", "Shop", NOW)
        partner_id = partner.id
    return programme, policy_for(programme, settings), partner_id


def _members(database: Database, count: int) -> list[int]:
    with database.write() as session:
        return [
            enrol(session, Identity("phone", f"1390000{index:04d}"), {}, NOW)[0]
            for index in range(count)
        ]


def _drinks(event_id: str, member_id: int, value: str = "50.00") -> Reported:
    return Reported(
        type="purchase",
        event_id=event_id,
        member_id=member_id,
        occurred_at=NOW,
        amount=Decimal(value),
        currency="CNY",
        items=(engine.Item(sku="t", amount=Decimal(value), category="drinks"),),
    )


def _process(
    database: Database, world: tuple[Programme, Policy, int], sent: list[Reported]
) -> list[Any]:
    programme, policy, partner_id = world
    with database.write() as session:
        return event_intake.process(
            session,
            Origin(partner_id=partner_id),
            sent,
            NOW,
            policy,
            programme,
            event_intake.book_for(programme),
        )


def _stored(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(StoredEvent)) or 0)


def test_racing_writers_never_overrun_a_budget(
    dialect: str, database: Database, world: tuple[Programme, Policy, int]
) -> None:
    """Eight transactions on eight connections report drinks at once; the BONUS campaign's
    budget of 200 points is given out exactly, never more, and each event says what it got."""
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    members = _members(database, 8)

    results = race(8, lambda i: _process(database, world, [_drinks(f"r-{i}", members[i])]))

    processed = [result[0] for result in results if isinstance(result, list)]
    assert len(processed) == 8, results
    bonus = [
        sum(rule["points"] for rule in p.outcome["rules"] if rule["campaign"] == "BONUS")
        for p in processed
    ]
    assert sum(bonus) == 200  # 100 asked each: two full grants, or cuts that add up to 200
    assert sorted(bonus, reverse=True)[:2] == [100, 100]
    with database.read() as session:
        assert session.get(RuleCounter, "budget:BONUS").used == 200  # type: ignore[union-attr]
        assert verify(session).ok
    assert _stored(database) == 8


def test_a_batch_of_many_events_takes_as_many_statements_as_a_batch_of_few(
    dialect: str,
    database: Database,
    world: tuple[Programme, Policy, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if dialect != "postgresql":
        pytest.skip("counted as PostgreSQL round trips")
    members = _members(database, 120)
    executed: list[str] = []
    real = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(str(query)[:60])
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    few = _process(database, world, [_drinks(f"f-{i}", members[i], "1.00") for i in range(10)])
    few_statements, executed[:] = len(executed), []
    many = _process(
        database, world, [_drinks(f"m-{i}", members[10 + i], "1.00") for i in range(100)]
    )
    many_statements = len(executed)
    monkeypatch.undo()

    assert all(isinstance(result, Processed) for result in [*few, *many])
    assert many_statements == few_statements, executed
    with database.read() as session:
        assert verify(session).ok


def test_racing_refunds_of_one_purchase_never_refund_the_same_money_twice(
    dialect: str, database: Database, world: tuple[Programme, Policy, int]
) -> None:
    """Four refunds of 60.00 each race for a purchase of 200.00: three are taken (in turn, under
    the purchase's lock), the fourth finds only 20.00 left and is refused; what was taken back
    adds up to three tenths of the grant each, and the budget gets exactly that back."""
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    (member,) = _members(database, 1)
    (bought,) = _process(database, world, [_drinks("buy", member, "200.00")])
    assert isinstance(bought, Processed)
    assert bought.points == 400  # 200 base + the BONUS budget's 200

    def refund(i: int) -> Any:
        sent = Reported(
            type="refund",
            event_id=f"refund-{i}",
            member_id=member,
            occurred_at=NOW,
            amount=Decimal("60.00"),
            currency="CNY",
            refers_to="buy",
        )
        return _process(database, world, [sent])[0]

    results = race(4, refund)

    taken = sorted(r.points for r in results if isinstance(r, Processed))
    refused = [r for r in results if not isinstance(r, Processed)]
    assert taken == [-120, -120, -120], results
    assert len(refused) == 1
    assert "exceeds what is left" in str(refused[0])
    with database.read() as session:
        purchase = session.scalars(select(StoredEvent).where(StoredEvent.event_id == "buy")).one()
        assert purchase.refunded_minor == 18_000
        assert session.get(RuleCounter, "budget:BONUS").used == 200 - 180  # type: ignore[union-attr]
        assert verify(session).ok
