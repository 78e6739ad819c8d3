"""Real parallel connections on growth value and tiers: concurrent earns upgrade a member exactly
once; the evaluation job run concurrently with itself changes each member once."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from support.race import race
from support.tier_programme import tier_programme
from tally.db.session import Database
from tally.flows import earning, enrolment
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.partners import service as partners
from tally.tiers import jobs
from tally.tiers import service as tiers
from tally.tiers.models import GrowthEntry, TierChange

THREADS = 8
_serial = itertools.count()
POLICY = Policy(
    validity_days=3650, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)
RULES = tier_programme(
    [("BRONZE", 0, "1"), ("SILVER", 1000, "1"), ("GOLD", 5000, "1")],
    {"kind": "rolling_window", "window_days": 30, "grace_days": 7},
)


def _partner(db: Database) -> Origin:
    with db.write() as session:
        partner = partners.create_partner(session, f"K{next(_serial)}", "k", utcnow())
        return Origin(partner_id=partner.id)


def _members(db: Database, count: int) -> list[int]:
    with db.write() as session:
        return [
            enrolment.enrol(session, Identity("t", f"k{next(_serial)}"), {}, utcnow())[0]
            for _ in range(count)
        ]


def _changes(db: Database) -> Counter[str]:
    with db.read() as session:
        return Counter(reason.value for reason in session.scalars(select(TierChange.reason)))


def test_concurrent_earns_on_one_member_upgrade_it_exactly_once(database: Database) -> None:
    origin = _partner(database)
    (member,) = _members(database, 1)
    now = utcnow()

    def earn(index: int) -> Any:
        with database.write() as session:
            return earning.earn(session, origin, member, 200, f"c{index}", now, POLICY, RULES)

    outcomes = race(THREADS, earn)  # 8 x 200 = 1600: SILVER once, at the fifth earn

    assert not [item for item in outcomes if isinstance(item, Exception)], outcomes
    upgraded = [item for item in outcomes if item.details.get("upgraded_from")]  # type: ignore[attr-defined]
    assert len(upgraded) == 1
    assert _changes(database) == Counter({"upgrade": 1})
    with database.read() as session:
        standing = tiers.standing(session, member, now, RULES)
        assert session.scalar(select(func.count()).select_from(GrowthEntry)) == THREADS
    assert (standing.tier.code, standing.growth, standing.lifetime_growth) == ("SILVER", 1600, 1600)


def test_the_evaluation_job_run_concurrently_with_itself_changes_each_member_once(
    database: Database,
) -> None:
    origin = _partner(database)
    members = _members(database, 30)
    earned_at = datetime(2027, 1, 1, tzinfo=UTC)
    for index, member in enumerate(members):
        with database.write() as session:
            earning.earn(
                session, origin, member, 5000 + index, f"s{index}", earned_at, POLICY, RULES
            )
    as_of = earned_at + timedelta(days=60)

    reports = race(4, lambda _index: jobs.evaluate(database.write, as_of, RULES, chunk=7))

    assert not [item for item in reports if isinstance(item, Exception)], reports
    assert _changes(database) == Counter({"upgrade": 30, "grace_started": 30})
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report.changes)  # type: ignore[attr-defined]
    assert total == Counter({"grace_started": 30})
    due = as_of + timedelta(days=7)
    again = race(4, lambda _index: jobs.evaluate(database.write, due, RULES, chunk=7))
    assert not [item for item in again if isinstance(item, Exception)], again
    assert _changes(database) == Counter({"upgrade": 30, "grace_started": 30, "downgrade": 30})
    with database.read() as session:
        for member in members:
            assert tiers.standing(session, member, due, RULES).tier.code == "SILVER"
