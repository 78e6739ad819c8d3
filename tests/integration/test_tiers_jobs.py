"""The tier evaluation job and growth value on a real database (SQLite and PostgreSQL):
grace and downgrades, idempotent re-runs, chunking, calendar years, programme changes, merges."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from support.tier_programme import tier_programme
from tally.config import Settings
from tally.db.session import Database
from tally.flows import earning, enrolment
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.outbox.domain import EventType
from tally.outbox.models import OutboxEvent
from tally.partners import service as partners
from tally.programme import service as programme_service
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Scheduler
from tally.staff import service as staff_service
from tally.staff.models import StaffRole
from tally.tiers import jobs, repository
from tally.tiers import service as tiers
from tally.tiers.models import GrowthEntry, MemberTier, TierChange

DEMO = Path(__file__).resolve().parents[2] / "src" / "tally" / "demo" / "programme.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 6, 15, 4, 0, tzinfo=UTC)
_serial = itertools.count()


def programme(kind: str = "rolling_window", **model: Any) -> Programme:
    tier_model: dict[str, Any] = {"kind": kind, **model}
    if kind == "rolling_window":
        tier_model.setdefault("window_days", 365)
    codes = [("BRONZE", 0), ("SILVER", 1000), ("GOLD", 5000), ("PLATINUM", 15000)]
    return tier_programme([(code, threshold, "1.5") for code, threshold in codes], tier_model)


POLICY = Policy(
    validity_days=3650, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)


class World:
    def __init__(self, db: Database, rules: Programme) -> None:
        self.db = db
        self.rules = rules
        with db.write() as session:
            partner = partners.create_partner(session, f"P{next(_serial)}", "p", NOW)
            self.origin = Origin(partner_id=partner.id)

    def member(self) -> int:
        with self.db.write() as session:
            member_id, _ = enrolment.enrol(
                session, Identity("t", f"m{next(_serial)}"), {}, NOW - timedelta(days=1000)
            )
            return member_id

    def earn(self, member: int, points: int, at: datetime, growth: int | None = None) -> Any:
        with self.db.write() as session:
            return earning.earn(
                session,
                self.origin,
                member,
                points,
                f"e{next(_serial)}",
                at,
                POLICY,
                self.rules,
                growth=growth,
            )

    def tier(self, member: int, at: datetime = NOW) -> tiers.Standing:
        with self.db.read() as session:
            return tiers.standing(session, member, at, self.rules)

    def evaluate(self, at: datetime, chunk: int = 2000, rules: Programme | None = None) -> Any:
        return jobs.evaluate(self.db.write, at, rules or self.rules, chunk=chunk)

    def history(self, member: int) -> list[tuple[str | None, str, str]]:
        with self.db.read() as session:
            rows = session.scalars(
                select(TierChange).where(TierChange.member_id == member).order_by(TierChange.id)
            )
            return [(row.from_code, row.to_code, row.reason.value) for row in rows]

    def count(self, model: Any) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_grace_then_downgrade_one_level_and_reruns_change_nothing(database: Database) -> None:
    world = World(database, programme(grace_days=30))
    member = world.member()
    world.earn(member, 16000, NOW - timedelta(days=400))  # PLATINUM, now out of the window
    assert world.tier(member).tier.code == "PLATINUM"

    first = world.evaluate(NOW)
    again = world.evaluate(NOW)

    assert first.changes == {"grace_started": 1}
    assert again.changes == {}
    due = world.tier(member).downgrade_at
    assert due == NOW + timedelta(days=30)
    assert world.evaluate(due - timedelta(seconds=1)).changes == {}
    assert world.evaluate(due).changes == {"downgrade": 1}
    assert world.evaluate(due).changes == {}
    standing = world.tier(member, due)
    assert (standing.tier.code, standing.since, standing.downgrade_at) == ("GOLD", due, None)
    assert world.history(member) == [
        ("BRONZE", "PLATINUM", "upgrade"),
        ("PLATINUM", "PLATINUM", "grace_started"),
        ("PLATINUM", "GOLD", "downgrade"),
    ]


def test_each_change_the_job_makes_is_told_by_a_tier_changed_event(database: Database) -> None:
    world = World(database, programme(grace_days=30))
    member = world.member()
    world.earn(member, 16000, NOW - timedelta(days=400))  # PLATINUM, now out of the window
    due = NOW + timedelta(days=30)
    world.evaluate(NOW)
    world.evaluate(due)

    with database.read() as session:
        events = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.type == EventType.TIER_CHANGED.value)
            .where(OutboxEvent.member_id == member)
            .order_by(OutboxEvent.id)
        ).all()
    documents = [event.data for event in events]
    assert documents[1:] == [
        {
            "member_id": member,
            "from": "PLATINUM",
            "to": "PLATINUM",
            "reason": "grace_started",
            "growth": 0,
            "downgrade_at": due.isoformat(),
            "changed_at": NOW.isoformat(),
        },
        {
            "member_id": member,
            "from": "PLATINUM",
            "to": "GOLD",
            "reason": "downgrade",
            "growth": 0,
            "downgrade_at": None,
            "changed_at": due.isoformat(),
        },
    ]
    assert [event.occurred_at for event in events[1:]] == [NOW, due]
    assert all(event.event_id.version == 7 for event in events)
    assert len({event.event_id for event in events}) == len(events)


def test_requalifying_during_the_grace_clears_it(database: Database) -> None:
    world = World(database, programme(grace_days=30))
    member = world.member()
    world.earn(member, 6000, NOW - timedelta(days=400))
    world.evaluate(NOW)
    world.earn(member, 5000, NOW + timedelta(days=1))

    report = world.evaluate(NOW + timedelta(days=2))

    assert report.changes == {"grace_cleared": 1}
    assert world.tier(member, NOW + timedelta(days=2)).downgrade_at is None
    assert world.history(member)[-1] == ("GOLD", "GOLD", "grace_cleared")


def test_without_grace_chunks_give_the_same_result_as_one_pass(database: Database) -> None:
    world = World(database, programme(max_levels_down=2))
    members = [world.member() for _ in range(7)]
    for index, member in enumerate(members):
        world.earn(member, 16000, NOW - timedelta(days=400))
        world.earn(member, 1, NOW - timedelta(days=10), growth=1000 * index)

    report = world.evaluate(NOW, chunk=3)

    # Growth now 0..6000: 0 → SILVER (two levels down at most), 1000-4000 → SILVER,
    # 5000-6000 → GOLD.
    assert report.members == 7
    assert report.changes == {"downgrade": 7}
    assert [world.tier(member).tier.code for member in members] == [
        "SILVER",
        "SILVER",
        "SILVER",
        "SILVER",
        "SILVER",
        "GOLD",
        "GOLD",
    ]
    assert world.evaluate(NOW, chunk=3).changes == {}


def test_window_edges_are_local_midnight_in_shanghai(database: Database) -> None:
    world = World(database, programme(window_days=1))
    member = world.member()
    # 23:30 in Shanghai on 14 June is 15:30 UTC: it counts on the 14th, not on the 15th.
    world.earn(member, 1000, datetime(2027, 6, 14, 15, 30, tzinfo=UTC))
    on_14th = datetime(2027, 6, 14, 15, 59, tzinfo=UTC)  # 23:59 Shanghai
    on_15th = datetime(2027, 6, 14, 16, 0, tzinfo=UTC)  # 00:00 Shanghai

    assert world.tier(member, on_14th).growth == 1000
    assert world.tier(member, on_15th).growth == 0
    assert world.tier(member, on_15th).window_start == on_15th
    assert world.evaluate(on_14th).changes == {}
    assert world.evaluate(on_15th).changes == {"downgrade": 1}


def test_calendar_year_status_lasts_through_the_next_year(database: Database) -> None:
    world = World(database, programme("calendar_year"))
    member = world.member()
    world.earn(member, 6000, datetime(2026, 3, 1, tzinfo=UTC))
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI)

    standing = world.tier(member, new_year)
    assert (standing.tier.code, standing.growth, standing.to_keep) == ("GOLD", 0, 0)
    assert world.evaluate(new_year).changes == {}
    year_after = datetime(2028, 1, 1, 0, 30, tzinfo=SHANGHAI)
    assert world.evaluate(year_after).changes == {"downgrade": 1}
    assert world.tier(member, year_after).tier.code == "SILVER"


def test_a_removed_tier_is_mapped_to_the_qualified_one(database: Database) -> None:
    world = World(database, programme())
    member = world.member()
    world.earn(member, 6000, NOW - timedelta(days=5))
    changed = programme().model_copy(
        update={"tiers": [tier for tier in programme().tiers if tier.code != "GOLD"]}
    )

    standing = world.tier(member)
    with database.read() as session:
        during = tiers.standing(session, member, NOW, changed)
    report = world.evaluate(NOW, rules=changed)

    assert standing.tier.code == "GOLD"
    assert during.tier.code == "SILVER"  # read as the qualified tier until evaluated
    assert report.changes == {"programme_change": 1}
    assert world.history(member)[-1] == ("GOLD", "SILVER", "programme_change")


def test_evaluation_catches_up_an_upgrade_when_thresholds_fall(database: Database) -> None:
    world = World(database, programme())
    member = world.member()
    world.earn(member, 900, NOW - timedelta(days=5))
    lower = programme().model_copy(
        update={
            "tiers": [
                tier.model_copy(update={"threshold": 800}) if tier.code == "SILVER" else tier
                for tier in programme().tiers
            ]
        }
    )

    assert world.evaluate(NOW, rules=lower).changes == {"upgrade": 1}
    assert world.evaluate(NOW, rules=lower).changes == {}


def test_reversal_takes_growth_back_in_the_window_it_counted(database: Database) -> None:
    world = World(database, programme(window_days=30))
    member = world.member()
    earned_at = NOW - timedelta(days=20)
    posted = world.earn(member, 1200, earned_at)

    with database.write() as session:
        reversed_ = earning.reverse(session, world.origin, posted.entry_id, NOW, POLICY)

    assert reversed_.details == {"clawed_back": 1200, "shortfall": 0}
    with database.read() as session:
        rows = session.scalars(select(GrowthEntry).order_by(GrowthEntry.id)).all()
        assert [(row.points, row.counted_at) for row in rows] == [
            (1200, earned_at),
            (-1200, earned_at),
        ]
        assert session.get(MemberTier, member).lifetime_growth == 0  # type: ignore[union-attr]
    assert world.tier(member).growth == 0
    assert world.tier(member).tier.code == "SILVER"
    assert world.evaluate(NOW).changes == {"downgrade": 1}


def test_merge_moves_growth_and_upgrades_the_survivor_unmerge_gives_it_back(
    database: Database,
) -> None:
    world = World(database, programme())
    survivor, merged = world.member(), world.member()
    world.earn(survivor, 3000, NOW - timedelta(days=3))
    world.earn(merged, 2500, NOW - timedelta(days=2))
    with database.write() as session:
        staff = staff_service.create(session, "ops", "correct horse 1", StaffRole.OPS, "Ops", NOW)
        staff_id = staff.id

    with database.write() as session:
        record = enrolment.merge(session, survivor, merged, staff_id, "duplicate", NOW, world.rules)
        merge_id = record.id

    after = world.tier(survivor)
    assert (after.tier.code, after.growth, after.lifetime_growth) == ("GOLD", 5500, 5500)
    assert world.history(survivor)[-1] == ("SILVER", "GOLD", "merge")
    assert world.tier(merged).lifetime_growth == 0

    with database.write() as session:
        enrolment.unmerge(session, merge_id, staff_id, NOW, world.rules)

    assert (world.tier(survivor).growth, world.tier(merged).growth) == (3000, 2500)
    assert world.tier(survivor).tier.code == "GOLD"  # down only at evaluation
    assert world.evaluate(NOW).changes == {"downgrade": 1}
    assert world.tier(survivor).tier.code == "SILVER"


def test_the_scheduler_evaluates_tiers_with_the_programme_in_force(database: Database) -> None:
    settings = Settings()
    text = DEMO.read_text()
    with database.write() as session:  # in force now: the scheduler runs at the clock's time
        programme_service.apply(session, programme_service.validate(text), text, "t", utcnow())
    demo = programme_service.validate(text)  # 365-day window, 30 days of grace
    world = World(database, demo)
    member = world.member()
    world.earn(member, 6000, utcnow() - timedelta(days=400))

    Scheduler(database, settings, ProgrammeCache(settings, 0), interval=3600).run_once()

    standing = world.tier(member, utcnow())
    assert standing.tier.code == "GOLD"
    assert standing.downgrade_at is not None
    with database.read() as session:
        change = session.scalars(select(TierChange).order_by(TierChange.id.desc())).first()
        assert change is not None
        assert (change.reason.value, change.programme_version) == ("grace_started", 1)


def test_a_decision_on_a_row_another_writer_moved_is_dropped_and_counted(
    database: Database,
) -> None:
    world = World(database, programme(grace_days=30))
    members = [world.member() for _ in range(3)]
    for member in members:
        world.earn(member, 16000, NOW - timedelta(days=400))  # each starts a grace period now
    moved = members[1]

    with database.write() as session:
        decided = jobs.decide(session, members[0], members[-1], world.rules, NOW)
        # Another writer (an earn, say) moves the middle member's row after the read.
        session.execute(
            update(MemberTier)
            .where(MemberTier.member_id == moved)
            .values(version=MemberTier.version + 1)
        )
        changes, stale = repository.apply_decisions(
            session, decided, NOW, NOW + timedelta(days=30), None
        )

    assert (changes, stale) == ({"grace_started": 2}, 1)
    assert world.history(moved) == [("BRONZE", "PLATINUM", "upgrade")]
    assert world.tier(moved).downgrade_at is None
    for member in (members[0], members[2]):
        assert world.history(member)[-1] == ("PLATINUM", "PLATINUM", "grace_started")
