"""Earns and redeems posted as one batch end exactly as if posted one by one, in order.

Hypothesis draws batches over a few members — some frozen, some unknown, amounts that cannot
be covered or are out of range, several orders of one member, growth values and tier
multipliers, earns of several lines (one sometimes out of range) — and posts each batch twice,
into two identical sets of members: once with ``flows.earning.post`` as the API's group commit
does, once order by order, each order in its own transaction. Outcomes, balances, lots,
chains, growth and tiers must be the same, and ``verify`` must find nothing wrong.
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

from support.tier_programme import tier_programme
from tally.db.raw import INTEGRITY_ERRORS, error_text
from tally.db.session import Database
from tally.errors import TallyError
from tally.flows import earning, enrolment
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind, Lot, Wallet
from tally.ledger.orders import Line, Order, post_orders
from tally.ledger.posting import Posted
from tally.ledger.verify import verify
from tally.members.service import Identity, freeze
from tally.partners import service as partners
from tally.tiers.models import GrowthEntry, MemberTier, TierChange

POLICY = Policy(validity_days=60, reversal_grace_days=5, zone_name="Asia/Shanghai", max_points=5000)
RULES = tier_programme(
    [("BRONZE", 0, "1"), ("SILVER", 300, "1.5"), ("GOLD", 1500, "2")],
    {"kind": "rolling_window", "window_days": 30, "grace_days": 7},
    validity_days=60,
)
MEMBERS = 4  # per world: members 0-2 active, 3 frozen; index 4 names no member
_serial = itertools.count()


@dataclass(frozen=True)
class Draw:
    """One order as Hypothesis draws it, before it names a world's members."""

    member: int
    redeem: bool
    points: int
    growth: int | None
    multiplied: bool
    expires_in_days: int | None
    lines: tuple[tuple[int, int | None], ...]  # an earn's lines: (points, expires in days)


def mostly(usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 0 else usual)


draws = st.builds(
    Draw,
    member=mostly(st.integers(0, 2), st.integers(3, MEMBERS)),  # rarely frozen or unknown
    redeem=st.booleans(),
    points=mostly(st.integers(1, 400), st.sampled_from([0, -3, 5001])),
    growth=mostly(st.one_of(st.none(), st.integers(0, 900)), st.just(-1)),
    multiplied=st.booleans(),
    expires_in_days=mostly(st.one_of(st.none(), st.integers(1, 90)), st.just(-1)),
    lines=mostly(
        st.just(()),
        st.lists(
            st.tuples(
                mostly(st.integers(1, 200), st.just(0)),
                st.one_of(st.none(), st.integers(1, 90)),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
)


@dataclass
class World:
    origin: Origin
    members: list[int]

    def order(self, draw: Draw, now: datetime) -> earning.Earning | Order:
        member = self.members[draw.member] if draw.member < MEMBERS else 10**9 + draw.member
        reference = f"ref-{next(_serial)}"
        if draw.redeem:
            return Order(EntryKind.REDEEM, self.origin, member, draw.points, reference)
        expires = None
        if draw.expires_in_days is not None:
            expires = now + timedelta(days=draw.expires_in_days)
        lines = tuple(
            Line(points, None if days is None else now + timedelta(days=days), f"line {index}")
            for index, (points, days) in enumerate(draw.lines)
        )
        points = sum(line.points for line in lines) if lines else draw.points
        order = Order(EntryKind.EARN, self.origin, member, points, reference, expires, lines=lines)
        return earning.Earning(order, draw.growth, draw.multiplied)


def _world(db: Database, now: datetime, seeds: list[list[tuple[int, int]]]) -> World:
    """Members with the same history in every world: ``seeds[i]`` are member i's earns
    ``(points, days ago)``; the last member is frozen."""
    with db.write() as session:
        partner = partners.create_partner(session, f"W{next(_serial)}", "w", now)
        origin = Origin(partner_id=partner.id)
        members = []
        for index in range(MEMBERS):
            member, _ = enrolment.enrol(session, Identity("t", f"w{next(_serial)}"), {}, now)
            for points, days_ago in seeds[index]:
                earning.earn(
                    session,
                    origin,
                    member,
                    points,
                    f"seed-{next(_serial)}",
                    now - timedelta(days=days_ago),
                    POLICY,
                    RULES,
                )
            members.append(member)
        freeze(session, members[-1], "test", now)
    return World(origin, members)


def _outcome(outcome: object) -> Any:
    """What must match across worlds: the error's code, or the details and the balance."""
    if isinstance(outcome, TallyError):
        return ("refused", outcome.code)
    assert isinstance(outcome, Posted)
    assert outcome.balance is not None
    return ("posted", outcome.details, outcome.balance)


def _state(db: Database, world: World) -> list[Any]:
    """Per member: wallet, live lots, growth and tier (ids and hashes differ across worlds)."""
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
            growth = session.scalars(
                select(GrowthEntry.points)
                .where(GrowthEntry.member_id == member)
                .order_by(GrowthEntry.id)
            ).all()
            tier = session.get(MemberTier, member, populate_existing=True)
            changes = session.execute(
                select(TierChange.from_code, TierChange.to_code, TierChange.reason)
                .where(TierChange.member_id == member)
                .order_by(TierChange.id)
            ).all()
            state.append(
                (
                    (wallet.available, wallet.held, wallet.seq),
                    [tuple(lot) for lot in lots],
                    list(growth),
                    (tier.tier_code, tier.lifetime_growth) if tier else None,
                    [tuple(change) for change in changes],
                )
            )
    return state


seeds = st.lists(
    st.lists(st.tuples(st.integers(1, 300), st.integers(0, 100)), max_size=3),
    min_size=MEMBERS,
    max_size=MEMBERS,
)


@pytest.mark.parametrize("batch_size", [1, 12])
def test_a_batch_ends_as_its_orders_one_by_one(database: Database, batch_size: int) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(seeds=seeds, drawn=st.lists(draws, min_size=1, max_size=batch_size))
    def check(seeds: list[list[tuple[int, int]]], drawn: list[Draw]) -> None:
        now = datetime(2026, 6, 1, 4, tzinfo=UTC) + timedelta(minutes=next(_serial))
        batched, alone = _world(database, now, seeds), _world(database, now, seeds)

        with database.write() as session:
            outcomes = earning.post(
                session, [batched.order(draw, now) for draw in drawn], now, POLICY, RULES
            )
        one_by_one = []
        for draw in drawn:
            with database.write() as session:
                one_by_one.append(
                    earning.post(session, [alone.order(draw, now)], now, POLICY, RULES)[0]
                )

        assert [_outcome(item) for item in outcomes] == [_outcome(item) for item in one_by_one]
        assert _state(database, batched) == _state(database, alone)

    check()
    with database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_a_reference_used_twice_in_a_batch_refuses_the_whole_batch(database: Database) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    world = _world(database, now, [[(100, 1)], [], [], []])
    orders = [
        Order(EntryKind.EARN, world.origin, world.members[0], 5, "same"),
        Order(EntryKind.EARN, world.origin, world.members[1], 5, "same"),
    ]
    before = _state(database, world)

    with pytest.raises(INTEGRITY_ERRORS) as raised, database.write() as session:
        post_orders(session, orders, now, POLICY)

    assert "source_key" in error_text(raised.value)
    assert _state(database, world) == before
