"""A hold past its timeout has lapsed for every reader at once: the balance shows its points
available again, the hold reads ``lapsed``, capture and void are refused, a spend may use the
points; the lapse job still writes the entries later, once, and ``tally ledger verify`` stays
clean. The clock is injected (no sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, tolerant_client
from sqlalchemy import func, select

from conftest import Api, PartnerKey
from support.policy import policy_of
from tally.config import Settings
from tally.db.session import Database
from tally.ledger import jobs
from tally.ledger.domain import HoldStatus
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.models import Hold as HoldRow
from tally.ledger.verify import verify

START = datetime(2027, 3, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai
LOT_EXPIRY = "2028-01-01T12:00:00+08:00"


@dataclass
class Clock:
    """The time every API module reads, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(START)
    for module in ("tally.api.deps", "tally.api.ledger", "tally.writer.writer"):
        monkeypatch.setattr(f"{module}.utcnow", found)
    return found


@pytest.fixture
def api(app: Any, partner: PartnerKey, clock: Clock) -> Iterator[Api]:
    with tolerant_client(app) as client:
        yield Api(client, partner)


def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def hold(api: Api, member: int, points: int, seconds: int, reference: str) -> dict[str, Any]:
    body = {"points": points, "expires_in_seconds": seconds, "reference": reference}
    return ok(api.post(f"/v1/members/{member}/holds", body))


def entries(database: Database, kind: EntryKind | None = None) -> int:
    with database.read() as session:
        query = select(func.count()).select_from(JournalEntry)
        if kind is not None:
            query = query.where(JournalEntry.kind == kind)
        return int(session.scalar(query) or 0)


def stored_status(database: Database, hold_id: str) -> HoldStatus:
    with database.read() as session:
        found = session.scalars(select(HoldRow)).all()
        return next(item.status for item in found if str(item.id) == hold_id)


def lapse_job(database: Database, at: datetime) -> jobs.ExpiryReport:
    return jobs.expire(database.write, at)


def assert_verified(database: Database) -> None:
    with database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_a_timed_out_hold_is_lapsed_for_every_reader_before_the_job(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    ok(api.earn(member, 100, expires_at=LOT_EXPIRY))
    held = hold(api, member, 25, 60, "checkout-1")
    assert (api.balance(member)["available"], api.balance(member)["held"]) == (75, 25)

    clock.advance(seconds=59)
    assert ok(api.get(f"/v1/holds/{held['id']}"), 200)["status"] == "active"
    clock.advance(seconds=1)  # the timeout itself: lapsed

    assert api.balance(member) == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2028-01-01", "points": 100}],
    }
    assert ok(api.get(f"/v1/holds/{held['id']}"), 200)["status"] == "lapsed"
    before = entries(database)
    assert_problem(api.post(f"/v1/holds/{held['id']}/capture"), 409, "hold_not_active")
    assert_problem(
        api.post(f"/v1/holds/{held['id']}/capture", {"points": 5}), 409, "hold_not_active"
    )
    assert_problem(api.post(f"/v1/holds/{held['id']}/void"), 409, "hold_not_active")
    assert entries(database) == before  # refused: nothing written
    assert stored_status(database, held["id"]) is HoldStatus.ACTIVE  # the job has not run

    report = lapse_job(database, clock.advance(minutes=5))
    assert report.holds_lapsed == 1
    assert stored_status(database, held["id"]) is HoldStatus.LAPSED
    assert entries(database, EntryKind.LAPSE) == 1
    assert api.balance(member)["available"] == 100
    assert api.balance(member)["held"] == 0
    assert lapse_job(database, clock.advance(minutes=5)).holds_lapsed == 0  # idempotent
    assert entries(database, EntryKind.LAPSE) == 1
    assert_verified(database)


def test_the_points_of_a_timed_out_hold_can_be_spent_at_once(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    ok(api.earn(member, 100, expires_at=LOT_EXPIRY))
    hold(api, member, 80, 30, "checkout-1")
    clock.advance(seconds=31)

    spent = ok(api.redeem(member, 100))
    assert spent["balance"] == {"available": 0, "held": 0, "expiring": []}
    assert entries(database, EntryKind.LAPSE) == 1  # recorded by the spend, as the job would

    assert lapse_job(database, clock.advance(minutes=5)).holds_lapsed == 0
    assert entries(database, EntryKind.LAPSE) == 1
    assert_verified(database)


def test_a_new_hold_sees_a_timed_out_hold_lapsed(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    ok(api.earn(member, 100, expires_at=LOT_EXPIRY))
    hold(api, member, 100, 30, "checkout-1")
    clock.advance(seconds=30)

    again = hold(api, member, 90, 600, "checkout-2")
    assert again["balance"] == {
        "available": 10,
        "held": 90,
        "expiring": [{"date": "2028-01-01", "points": 10}],
    }
    assert entries(database, EntryKind.LAPSE) == 1
    assert_verified(database)


def test_a_lapsed_hold_gives_points_back_with_their_own_expiry(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    soon = (START + timedelta(minutes=3)).isoformat()
    ok(api.earn(member, 40, expires_at=soon))
    ok(api.earn(member, 60, expires_at=LOT_EXPIRY))
    hold(api, member, 70, 60, "checkout-1")  # 40 from the soon lot, 30 from the late one

    clock.advance(minutes=2)  # timed out; the soon lot still valid
    assert api.balance(member)["available"] == 100
    clock.advance(minutes=2)  # the soon lot has expired too, still before any job
    assert api.balance(member) == {
        "available": 60,
        "held": 0,
        "expiring": [{"date": "2028-01-01", "points": 60}],
    }

    report = lapse_job(database, clock.now)
    assert report.holds_lapsed == 1
    lapse_job(database, clock.now)  # expires what the lapse gave back to the expired lot
    assert api.balance(member)["available"] == 60
    assert_verified(database)


def test_a_hold_before_its_timeout_is_untouched(api: Api, database: Database, clock: Clock) -> None:
    member = api.enrol("13800000001")
    ok(api.earn(member, 100, expires_at=LOT_EXPIRY))
    held = hold(api, member, 25, 60, "checkout-1")
    clock.advance(seconds=30)
    ok(api.redeem(member, 10))

    assert entries(database, EntryKind.LAPSE) == 0
    assert api.balance(member)["held"] == 25
    captured = ok(api.post(f"/v1/holds/{held['id']}/capture"), 200)
    assert captured["hold"]["status"] == "captured"
    assert_verified(database)


def test_a_writer_that_may_not_wait_leaves_a_lapse_to_one_that_may(database: Database) -> None:
    """On the event loop (``wait=False``) an order whose member has a hold to lapse is busy: it
    is asked again of a writer that may take locks, which records the lapse and posts it."""
    from conftest import make_partner
    from tally.flows import enrolment
    from tally.ledger import holds as ledger_holds
    from tally.ledger import service as ledger
    from tally.ledger.domain import Origin
    from tally.ledger.orders import BUSY, Order, post_orders
    from tally.ledger.posting import Posted
    from tally.members.service import Identity

    policy = policy_of(Settings())
    shop = Origin(partner_id=make_partner(database, "SHOP").partner_id)
    with database.write() as session:
        held, _ = enrolment.enrol(session, Identity("phone", "13800000001"), {}, START)
        free, _ = enrolment.enrol(session, Identity("phone", "13800000002"), {}, START)
        for member in (held, free):
            ledger.earn(session, shop, member, 100, f"seed-{member}", START, policy)
        ledger_holds.create_hold(session, shop, held, 100, "h-1", 60, START, policy)
    later = START + timedelta(minutes=2)
    orders = [Order(EntryKind.REDEEM, shop, member, 100, f"r-{member}") for member in (held, free)]

    with database.write() as session:
        busy, done = post_orders(session, orders, later, policy, wait=False)
    assert busy is BUSY
    assert isinstance(done, Posted)
    assert entries(database, EntryKind.LAPSE) == 0

    with database.write() as session:
        (again,) = post_orders(session, orders[:1], later, policy)
    assert isinstance(again, Posted)
    assert again.balance is not None
    assert (again.balance.available, again.balance.held) == (0, 0)
    assert entries(database, EntryKind.LAPSE) == 1
    assert_verified(database)
