"""Holds, captures and voids posted as one batch, among earns and redeems, end exactly as if posted
one by one, in order (the checkout path of the group commit, ADR 16).

Hypothesis draws batches over a few members, each with earned lots and holds made beforehand
(one of them already past its timeout): new holds of any size, full and partial captures and
voids of those holds — the same hold captured twice, a hold of a frozen member (which may be
voided, not captured) — and earns and redeems between them. Each batch is posted twice, into
two identical worlds: once with ``post_orders`` as the group commit does, once order by order,
each order in its own transaction. Outcomes, balances, lots and holds must be the same, and
``verify`` must find nothing wrong.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tally.config import Settings
from tally.db.session import Database
from tally.errors import TallyError
from tally.flows import earning, enrolment
from tally.ledger import holds as ledger_holds
from tally.ledger.domain import HeldRow, Origin, Policy
from tally.ledger.models import EntryKind, Hold, Lot, Wallet
from tally.ledger.orders import Order, capture_order, hold_order, post_orders, void_order
from tally.ledger.posting import Posted
from tally.ledger.verify import verify
from tally.members.service import Identity, freeze
from tally.partners import service as partners
from tally.programme.runtime import default_programme

POLICY = Policy(
    validity_days=60,
    reversal_grace_days=5,
    zone_name="Asia/Shanghai",
    max_points=5000,
    max_hold_seconds=3600,
)
RULES = default_programme(Settings(secret_key="t" * 32))
MEMBERS = 3  # per world: members 0-1 active, 2 frozen (its holds were made before)
HOLDS = 2  # per member, made beforehand: hold 0 is live, hold 1 timed out a minute ago
_serial = itertools.count()


@dataclass(frozen=True)
class Draw:
    """One order as Hypothesis draws it, before it names a world's members and holds."""

    kind: EntryKind
    member: int
    points: int
    hold: int  # a capture: which of the member's holds made beforehand
    whole: bool  # a capture: all of the hold (else ``points`` of it)
    seconds: int  # a hold: its timeout


draws = st.builds(
    Draw,
    kind=st.sampled_from(
        [EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.VOID, EntryKind.EARN, EntryKind.REDEEM]
    ),
    member=st.integers(0, MEMBERS - 1),
    points=st.one_of(st.integers(1, 150), st.sampled_from([0, 5001])),
    hold=st.integers(0, HOLDS - 1),
    whole=st.booleans(),
    seconds=st.one_of(st.integers(1, 3600), st.just(3601)),
)


@dataclass
class World:
    origin: Origin
    members: list[int]
    holds: list[list[HeldRow]]

    def order(self, draw: Draw) -> Order | TallyError:
        member = self.members[draw.member]
        reference = f"ref-{next(_serial)}"
        if draw.kind is EntryKind.HOLD:
            return hold_order(self.origin, member, draw.points, reference, draw.seconds)
        if draw.kind in (EntryKind.CAPTURE, EntryKind.VOID):
            found = self.holds[draw.member][draw.hold]
            try:
                if draw.kind is EntryKind.VOID:
                    return void_order(self.origin, found, NOW)
                return capture_order(self.origin, found, None if draw.whole else draw.points, NOW)
            except TallyError as refused:  # refused before it is posted, in both worlds
                return refused
        return Order(draw.kind, self.origin, member, draw.points, reference)


NOW = datetime(2026, 6, 1, 4, tzinfo=UTC)


def _world(db: Database, seeds: list[list[int]]) -> World:
    """Members with the same history in every world: ``seeds[i]`` are member i's earns (a day
    apart), then its holds; the last member is then frozen."""
    with db.write() as session:
        partner = partners.create_partner(session, f"C{next(_serial)}", "c", NOW)
        origin = Origin(partner_id=partner.id)
        members, holds = [], []
        for index in range(MEMBERS):
            member, _ = enrolment.enrol(session, Identity("t", f"c{next(_serial)}"), {}, NOW)
            for day, points in enumerate(seeds[index]):
                earning.earn(
                    session,
                    origin,
                    member,
                    points,
                    f"seed-{next(_serial)}",
                    NOW - timedelta(days=len(seeds[index]) - day),
                    POLICY,
                    RULES,
                )
            made = []
            for timeout, back in ((3000, 10), (60, 120)):  # the second timed out a minute ago
                then = NOW - timedelta(seconds=back)
                hold, _posted = ledger_holds.create_hold(
                    session, origin, member, 20, f"h-{next(_serial)}", timeout, then, POLICY
                )
                made.append(ledger_holds.find(session, [hold.id])[hold.id])
            members.append(member)
            holds.append(made)
        freeze(session, members[-1], "test", NOW)
    return World(origin, members, holds)


def _outcome(outcome: object) -> Any:
    """What must match across worlds: the error's code, or the details, balance and hold."""
    if isinstance(outcome, TallyError):
        return ("refused", outcome.code)
    assert isinstance(outcome, Posted)
    details = {key: value for key, value in outcome.details.items() if key != "hold_id"}
    hold = None
    if outcome.hold is not None:
        hold = (outcome.hold.points, outcome.hold.captured_points, outcome.hold.status)
    return ("posted", details, outcome.balance, hold)


def _state(db: Database, world: World) -> list[Any]:
    """Per member: wallet, lots and holds (ids and hashes differ across worlds)."""
    state = []
    with db.read() as session:
        for member in world.members:
            wallet = session.get(Wallet, member, populate_existing=True)
            assert wallet is not None
            lots = session.execute(
                select(Lot.points, Lot.remaining, Lot.expires_at)
                .where(Lot.member_id == member)
                .order_by(Lot.expires_at, Lot.points, Lot.remaining)
            ).all()
            holds = session.execute(
                select(Hold.points, Hold.captured_points, Hold.status, Hold.expires_at)
                .where(Hold.member_id == member)
                .order_by(Hold.expires_at, Hold.points, Hold.captured_points, Hold.status)
            ).all()
            state.append(
                (
                    (wallet.available, wallet.held, wallet.seq),
                    [tuple(lot) for lot in lots],
                    [tuple(hold) for hold in holds],
                )
            )
    return state


def _post(db: Database, orders: list[Order | TallyError]) -> list[Any]:
    """Post the orders in one transaction; refusals made before posting stand as they are."""
    wanted = [order for order in orders if isinstance(order, Order)]
    with db.write() as session:
        posted = iter(post_orders(session, wanted, NOW, POLICY))
    return [order if isinstance(order, TallyError) else next(posted) for order in orders]


seeds = st.lists(
    st.lists(st.integers(50, 300), min_size=1, max_size=3), min_size=MEMBERS, max_size=MEMBERS
)


@pytest.mark.parametrize("batch_size", [1, 12])
def test_a_batch_of_checkouts_ends_as_its_orders_one_by_one(
    database: Database, batch_size: int
) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(seeds=seeds, drawn=st.lists(draws, min_size=1, max_size=batch_size))
    def check(seeds: list[list[int]], drawn: list[Draw]) -> None:
        batched, alone = _world(database, seeds), _world(database, seeds)

        outcomes = _post(database, [batched.order(draw) for draw in drawn])
        one_by_one = [_post(database, [alone.order(draw)])[0] for draw in drawn]

        assert [_outcome(item) for item in outcomes] == [_outcome(item) for item in one_by_one]
        assert _state(database, batched) == _state(database, alone)

    check()
    with database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_a_hold_captured_twice_in_one_batch_is_spent_once(database: Database) -> None:
    world = _world(database, [[100], [100], [100]])
    live = world.holds[0][0]
    orders: list[Order | TallyError] = [
        capture_order(world.origin, live, None, NOW),
        capture_order(world.origin, live, 5, NOW),
    ]

    first, second = _post(database, orders)

    assert isinstance(first, Posted)
    assert first.details == {"captured": 20, "released": 0}
    assert isinstance(second, TallyError)
    assert second.code == "hold_not_active"
    with database.read() as session:
        found = session.get(Hold, live.hold.id)
        assert found is not None
        assert (found.status, found.captured_points) == ("captured", 20)
        wallet = session.get(Wallet, world.members[0])
        assert wallet is not None
        assert wallet.held == 0  # the timed-out hold lapsed first: the capture moved points
        lapsed = session.get(Hold, world.holds[0][1].hold.id)
        assert lapsed is not None
        assert lapsed.status == "lapsed"


def test_a_partial_capture_in_a_batch_gives_the_rest_back_to_its_lots(
    database: Database,
) -> None:
    world = _world(database, [[100], [100], [100]])
    live = world.holds[1][0]
    other = hold_order(world.origin, world.members[0], 30, "new-hold", 600)

    captured, held = _post(database, [capture_order(world.origin, live, 15, NOW), other])

    assert isinstance(captured, Posted)
    assert captured.details == {"captured": 15, "released": 5}
    assert captured.balance is None  # read once the points are back in their lots
    assert isinstance(held, Posted)
    assert held.hold is not None
    assert held.hold.points == 30
    with database.read() as session:
        wallet = session.get(Wallet, world.members[1])
        # 100 earned, 2 x 20 held; the timed-out hold lapses first (its 20 back), then 15 of
        # the live one are captured and 5 go back to the lot.
        assert wallet is not None
        assert (wallet.available, wallet.held) == (85, 0)
        report = verify(session)
    assert report.ok, report.problems


def test_a_frozen_members_hold_may_be_voided_not_captured(database: Database) -> None:
    world = _world(database, [[100], [100], [100]])
    frozen = world.holds[2][0]

    captured, voided = _post(
        database,
        [capture_order(world.origin, frozen, None, NOW), void_order(world.origin, frozen, NOW)],
    )

    assert isinstance(captured, TallyError)
    assert captured.code == "member_frozen"
    assert isinstance(voided, Posted)
    assert voided.details == {"released": 20}
    assert voided.hold is not None
    assert voided.hold.status == "voided"
    with database.read() as session:
        wallet = session.get(Wallet, world.members[2])
        assert wallet is not None
        assert (wallet.available, wallet.held) == (100, 0)  # the timed-out one lapsed first
