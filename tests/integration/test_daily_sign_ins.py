"""Daily sign-ins through the intake: once a day in the programme's zone (Asia/Shanghai), a
streak that crosses midnight there, events of one member in one batch and across batches, a
broken streak, and a dry run that keeps nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from support.event_programme import CAMPAIGNS, apply_campaigns
from support.race import race
from tally.config import Settings
from tally.db.session import Database
from tally.engagement.models import SignInStreak
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Programme

LATE = datetime(2026, 12, 3, 15, 59, tzinfo=UTC)  # 23:59 on 3 December in Shanghai
EARLY = datetime(2026, 12, 3, 16, 1, tzinfo=UTC)  # 00:01 on 4 December in Shanghai
LATER = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)  # 00:30 on 4 December in Shanghai
SIXTH = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)  # 09:00 on 6 December: 5 December missed
STREAKS = {
    "code": "STREAK",
    "names": {"zh-CN": "连续签到", "en": "Streaks"},
    "on": ["sign_in"],
    "rules": [
        {"code": "day-2", "when": "member.sign_in_streak == 2", "award": {"points": 20}},
        {"code": "come-back", "when": "member.sign_in_streak_broken", "award": {"points": 1}},
    ],
}
LOYAL = {
    "code": "LOYAL",
    "names": {"zh-CN": "常来", "en": "Regulars"},
    "on": ["purchase"],
    "rules": [{"code": "streak", "when": "member.sign_in_streak >= 2", "award": {"points": 7}}],
}
World = tuple[Programme, Policy, int, int]


@pytest.fixture
def world(database: Database, settings: Settings) -> World:
    programme = apply_campaigns(database, [*CAMPAIGNS, STREAKS, LOYAL])
    with database.write() as session:
        partner_id = partners.create_partner(session, "APP", "App", LATE).id
        member_id = enrol(session, Identity("phone", "13900000001"), {}, LATE)[0]
    return programme, policy_for(programme, settings), partner_id, member_id


def _sign_in(world: World, event_id: str, at: datetime) -> Reported:
    return Reported(type="sign_in", event_id=event_id, member_id=world[3], occurred_at=at)


def _process(database: Database, world: World, sent: list[Reported], write: bool = True) -> Any:
    programme, policy, partner_id, _ = world
    with database.write() as session:
        results = event_intake.process(
            session,
            Origin(partner_id=partner_id),
            sent,
            sent[-1].occurred_at,
            policy,
            programme,
            event_intake.book_for(programme),
            write=write,
        )
    assert all(isinstance(result, Processed) for result in results), results
    return results


def _rules(result: Processed) -> list[tuple[str, int]]:
    return [(rule["rule"], rule["points"]) for rule in result.outcome["rules"]]


def test_a_streak_crosses_midnight_in_the_programmes_zone_within_one_batch(
    database: Database, world: World
) -> None:
    first, second, third = _process(
        database,
        world,
        [_sign_in(world, "a", LATE), _sign_in(world, "b", EARLY), _sign_in(world, "c", LATER)],
    )
    assert _rules(first) == [("daily", 5)]
    assert _rules(second) == [("daily", 5), ("day-2", 20)]
    assert third.points == 0
    assert _rules(third) == []
    assert {(s["campaign"], s["reason"], s["detail"]) for s in third.outcome["skipped"]} >= {
        ("WELCOME", "capped", "signed in already on 2026-12-04: a sign-in counts once a day"),
        ("STREAK", "capped", "signed in already on 2026-12-04: a sign-in counts once a day"),
    }
    with database.read() as session:
        streak = session.get(SignInStreak, world[3])
        assert streak is not None
        assert (streak.last_day.isoformat(), streak.streak) == ("2026-12-04", 2)


def test_across_batches_a_repeat_counts_nothing_and_a_missed_day_breaks_the_streak(
    database: Database, world: World
) -> None:
    assert _rules(_process(database, world, [_sign_in(world, "a", LATE)])[0]) == [("daily", 5)]
    second = _process(database, world, [_sign_in(world, "b", EARLY)])[0]
    assert _rules(second) == [("daily", 5), ("day-2", 20)]
    assert _process(database, world, [_sign_in(world, "c", LATER)])[0].points == 0
    back = _process(database, world, [_sign_in(world, "d", SIXTH)])[0]
    assert _rules(back) == [("daily", 5), ("come-back", 1)]
    assert next(s for s in back.outcome["skipped"] if s["rule"] == "day-2")["detail"] == (
        "when: member.sign_in_streak == 2"
    )


def test_a_dry_run_keeps_no_streak(database: Database, world: World) -> None:
    dry = _process(database, world, [_sign_in(world, "a", LATE)], write=False)[0]
    assert dry.points == 5
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(SignInStreak)) == 0
    assert _process(database, world, [_sign_in(world, "a", LATE)])[0].points == 5


def test_other_events_see_a_live_streak_in_the_same_batch_and_after(
    database: Database, world: World
) -> None:
    def buy(event_id: str, at: datetime) -> Reported:
        return Reported("purchase", event_id, world[3], at, amount=Decimal("1.00"), currency="CNY")

    results = _process(
        database,
        world,
        [
            _sign_in(world, "a", LATE),
            buy("p1", LATE),
            _sign_in(world, "b", EARLY),
            buy("p2", EARLY),
        ],
    )
    assert [("streak", 7) in _rules(result) for result in results] == [False, False, False, True]
    a_day_later = buy("p3", EARLY + timedelta(days=1))  # signed in yesterday: still alive
    two_days_later = buy("p4", EARLY + timedelta(days=2))  # a day missed: no streak
    assert ("streak", 7) in _rules(_process(database, world, [a_day_later])[0])
    assert ("streak", 7) not in _rules(_process(database, world, [two_days_later])[0])


def test_racing_sign_ins_of_one_day_count_once(
    dialect: str, database: Database, world: World
) -> None:
    """Six connections report the member's sign-ins of one day at once (other event ids): one
    counts, the others are stored as counting nothing, and the streak is 1."""
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")

    results = race(6, lambda i: _process(database, world, [_sign_in(world, f"r-{i}", EARLY)]))

    assert all(isinstance(result, list) for result in results), results
    assert sorted(result[0].points for result in results) == [0] * 5 + [5]  # type: ignore[index]
    with database.read() as session:
        streak = session.get(SignInStreak, world[3])
        assert streak is not None
        assert streak.streak == 1
