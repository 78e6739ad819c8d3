"""``tally programme plan``'s impact on members, on a real database (SQLite and PostgreSQL):
members of removed tiers and where they go, members a changed threshold or tier model moves at
the next evaluation, open memberships of removed plans; nothing is written."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tally.db.session import Database
from tally.flows import earning, enrolment, programme_impact
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.memberships import service as memberships
from tally.partners import service as partners
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Money, Programme
from tally.tiers.models import MemberTier, TierChange

DEMO = Path(__file__).resolve().parents[2] / "src" / "tally" / "demo" / "programme.yaml"
POLICY = Policy(
    validity_days=3650, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)
DAY = timedelta(days=1)
_serial = itertools.count()


def demo() -> Programme:
    return loader.load(DEMO.read_text(encoding="utf-8"), DEMO.name)


def edited(programme: Programme, **changes: Any) -> Programme:
    """``programme`` with top-level sections replaced; ``thresholds`` sets tier thresholds."""
    content = programme.dump()
    for code, threshold in changes.pop("thresholds", {}).items():
        next(tier for tier in content["tiers"] if tier["code"] == code)["threshold"] = threshold
    for code in changes.pop("drop_tiers", []):
        content["tiers"] = [tier for tier in content["tiers"] if tier["code"] != code]
    return Programme.model_validate({**content, **changes})


class World:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.now = utcnow()
        self.programme = demo()
        with db.write() as session:
            programme_service.apply(
                session, self.programme, DEMO.read_text(), "tests", self.now - 500 * DAY
            )
            self.partner = partners.partner_by_code(session, "SHOP")

    def member(self, growth: int, days_ago: int = 10) -> int:
        at = self.now - days_ago * DAY
        with self.db.write() as session:
            member_id, _ = enrolment.enrol(
                session, Identity("phone", f"1390000{next(_serial):04d}"), {}, at
            )
            earning.earn(
                session, Origin(partner_id=self.partner.id), member_id, 1, f"e{member_id}", at,
                POLICY, self.programme, growth=growth,
            )  # fmt: skip
        return member_id

    def subscribe(self, member_id: int, *, pay: bool) -> None:
        with self.db.write() as session:
            row, _ = memberships.subscribe(
                session, memberships.SYSTEM, member_id, "VIP88", self.programme, self.now
            )
            if pay:
                memberships.pay(
                    session, memberships.Actor(partner_id=self.partner.id), row.id,
                    f"pay-{member_id}", Money(8800, "CNY"), self.now, self.programme, self.now,
                )  # fmt: skip

    def impact(self, new: Programme, chunk: int = 3) -> programme_impact.Impact:
        with self.db.read() as session:
            return programme_impact.impact(session, self.programme, new, self.now, chunk)

    def tiers(self) -> list[tuple[int, str]]:
        with self.db.read() as session:
            rows = session.execute(select(MemberTier.member_id, MemberTier.tier_code)).all()
            return sorted((int(member), str(code)) for member, code in rows)


@pytest.fixture
def world(database: Database) -> World:
    world = World(database)
    black = [world.member(120_000) for _ in range(6)]
    for _ in range(2):
        world.member(45_000)  # DIAMOND under both files
    for _ in range(3):
        world.member(6_000)  # GOLD, below a GOLD raised to 7000
    for _ in range(2):
        world.member(13_000)  # GOLD, above a PLATINUM lowered to 12000
    world.member(20_000, days_ago=400)  # PLATINUM, nothing left in the window
    world.subscribe(black[0], pay=True)
    world.subscribe(black[1], pay=False)
    return world


def test_an_unchanged_file_moves_nobody(world: World) -> None:
    found = world.impact(world.programme)

    assert found.members == 14
    assert (found.removed, found.moved, found.plans, found.namespaces) == ({}, {}, {}, {})
    assert found.grace == (1, 1)
    assert found.lines(world.programme) == []


def test_a_removed_tier_says_who_holds_it_and_where_they_go(world: World) -> None:
    new = edited(world.programme, drop_tiers=["BLACK_DIAMOND"])

    found = world.impact(new)

    assert found.removed == {"BLACK_DIAMOND": {"DIAMOND": 6}}
    assert found.lines(new) == [
        "tier BLACK_DIAMOND removed: 6 members hold it; at the next evaluation 6 to DIAMOND"
    ]


def test_changed_thresholds_and_grace_say_who_moves_up_and_down(world: World) -> None:
    tier_model = {**world.programme.tier_model.model_dump(), "grace_days": 0}
    new = edited(
        world.programme,
        thresholds={"GOLD": 7000, "PLATINUM": 12000},
        tier_model=tier_model,
        plans=[],
    )
    before = world.tiers()
    with world.db.read() as session:
        history = session.scalar(select(func.count()).select_from(TierChange))

    found = world.impact(new)

    assert found.moved == {
        ("GOLD", "GOLD", "SILVER"): 3,
        ("GOLD", "GOLD", "PLATINUM"): 2,
        ("PLATINUM", "PLATINUM", "GOLD"): 1,
    }
    assert found.lines(new) == [
        "members at the next evaluation: 14 evaluated, 6 end on another tier than under the "
        "running programme (2 move up, 4 move down, 0 stay)",
        "  3 members: GOLD → SILVER (running programme: stay GOLD)",
        "  2 members: GOLD → PLATINUM (running programme: stay GOLD)",
        "  1 member: PLATINUM → GOLD (running programme: stay PLATINUM)",
        "grace periods starting at the next evaluation: 0 (running programme: 1)",
        "plan VIP88 removed: 2 open memberships (active 1, pending 1) stay until they end or are "
        "cancelled, without the plan's benefits",
    ]
    assert world.tiers() == before  # read only
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(TierChange)) == history


def test_a_removed_namespace_counts_the_identities_left_in_it(world: World) -> None:
    kept = [spec for spec in world.programme.dump()["namespaces"] if spec["code"] != "phone"]
    kept = [spec for spec in kept if spec["code"] != "hotel"]
    new = edited(world.programme, namespaces=kept)

    with world.db.read() as session:
        lines = programme_impact.plan(session, world.programme, new, world.now)

    assert world.impact(new).namespaces == {"phone": 14, "hotel": 0}
    assert lines == [
        "namespace phone removed: 14 identities in it stay readable but cannot be enrolled, "
        "linked or looked up until it is declared again",
        "namespace hotel removed: no identity in it",
    ]


def test_a_new_tier_model_is_counted_in_its_own_window(world: World) -> None:
    # Lifetime growth: the PLATINUM member's old growth counts again, so it keeps its tier and
    # starts no grace period.
    new = edited(world.programme, tier_model={"kind": "lifetime", "max_levels_down": 1})

    found = world.impact(new, chunk=5)

    assert found.moved == {}
    assert found.grace == (1, 0)
    assert found.lines(new) == [
        "grace periods starting at the next evaluation: 0 (running programme: 1)"
    ]


def test_the_impact_matches_the_evaluation_that_follows(world: World) -> None:
    from tally.tiers import jobs

    new = edited(
        world.programme,
        drop_tiers=["BLACK_DIAMOND"],
        thresholds={"GOLD": 7000},
        tier_model={**world.programme.tier_model.model_dump(), "grace_days": 0},
    )
    found = world.impact(new)
    before = dict(world.tiers())

    jobs.evaluate(world.db.write, world.now, new)

    after = dict(world.tiers())
    moves = {(before[m], after[m]) for m in after if before[m] != after[m]}
    assert moves == {("BLACK_DIAMOND", "DIAMOND"), ("GOLD", "SILVER"), ("PLATINUM", "GOLD")}
    assert sum(1 for m in after if before[m] != after[m]) == 6 + sum(found.moved.values())
    assert found.moved == {("GOLD", "GOLD", "SILVER"): 3, ("PLATINUM", "PLATINUM", "GOLD"): 1}
