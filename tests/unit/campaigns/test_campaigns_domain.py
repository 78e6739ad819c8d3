"""Campaign operations, pure: a campaign's status on a day, which campaigns an outcome touched
(and in which arm), the arms its results list, the programme's day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tally.campaigns.domain import (
    Status,
    Touch,
    arms_of,
    day_bounds,
    refund_touched,
    status_of,
    touched,
)
from tally.rules.rule_book import CampaignSpec, Variant

JUNE = CampaignSpec("JUNE", ("purchase",), (), starts=date(2026, 6, 1), ends=date(2026, 6, 30))


@pytest.mark.parametrize(
    ("today", "paused", "status"),
    [
        (date(2026, 5, 31), False, Status.SCHEDULED),
        (date(2026, 5, 31), True, Status.PAUSED),  # a pause holds when the schedule begins
        (date(2026, 6, 1), False, Status.RUNNING),
        (date(2026, 6, 30), True, Status.PAUSED),
        (date(2026, 7, 1), False, Status.ENDED),
        (date(2026, 7, 1), True, Status.ENDED),
    ],
)
def test_status_follows_the_schedule_and_the_pause(
    today: date, paused: bool, status: Status
) -> None:
    assert status_of(JUNE, paused=paused, today=today) is status


def test_an_unscheduled_campaign_runs_until_paused() -> None:
    always = CampaignSpec("ALWAYS", ("purchase",), ())
    assert status_of(always, paused=False, today=date(1999, 1, 1)) is Status.RUNNING
    assert status_of(always, paused=True, today=date(2999, 1, 1)) is Status.PAUSED


def test_an_outcome_touches_the_campaigns_its_rules_reached() -> None:
    outcome = {
        "rules": [
            {"campaign": "BASE", "rule": "a", "points": 10, "growth": 0},
            {"campaign": "BASE", "rule": "b", "points": 0, "growth": 10},
            {"campaign": "AB", "rule": "x", "points": 30, "growth": 0},
        ],
        "skipped": [
            {"campaign": "HELD", "rule": "r", "reason": "holdout"},
            {"campaign": "COND", "rule": "r", "reason": "condition_false"},
            {"campaign": "CAP", "rule": "r", "reason": "capped"},
            {"campaign": "TYPE", "rule": "r", "reason": "not_this_event_type"},
            {"campaign": "LATE", "rule": "r", "reason": "outside_schedule"},
            {"campaign": "STOP", "rule": "r", "reason": "paused"},
        ],
        "arms": {"AB": "B", "HELD": "holdout", "COND": None},
    }

    assert touched(outcome) == [
        Touch("BASE", None, 10, 10),
        Touch("AB", "B", 30, 0),
        Touch("HELD", "holdout", 0, 0),
        Touch("COND", None, 0, 0),
        Touch("CAP", None, 0, 0),
    ]


def test_the_arms_of_results() -> None:
    ab = (Variant("A", 1), Variant("B", 2))
    assert arms_of(CampaignSpec("X", ("purchase",), ())) == [None]
    assert arms_of(CampaignSpec("X", ("purchase",), (), holdout_bp=500)) == [None, "holdout"]
    assert arms_of(CampaignSpec("X", ("purchase",), (), variants=ab)) == ["A", "B"]
    tested = CampaignSpec("X", ("purchase",), (), variants=ab, holdout_bp=1)
    assert arms_of(tested) == ["A", "B", "holdout"]


def test_the_day_is_the_programmes() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    start, end = day_bounds(datetime(2026, 5, 6, 17, 0, tzinfo=UTC), zone)  # 01:00 on the 7th
    assert start == datetime(2026, 5, 6, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 5, 7, 16, 0, tzinfo=UTC)


def test_a_refund_takes_back_from_the_campaigns_its_purchase_reached() -> None:
    purchase = {
        "rules": [
            {"campaign": "BASE", "rule": "a", "points": 100, "growth": 100},
            {"campaign": "AB", "rule": "x", "points": 30, "growth": 0},
        ],
        "skipped": [
            {"campaign": "HELD", "rule": "r", "reason": "holdout"},
            {"campaign": "TYPE", "rule": "r", "reason": "not_this_event_type"},
        ],
        "arms": {"AB": "B", "HELD": "holdout"},
    }
    refund = {
        "rules": [
            {"campaign": "BASE", "rule": "a", "points": -50, "growth": -50},
            {"campaign": "AB", "rule": "x", "points": -15, "growth": 0},
        ],
        "skipped": [],
        "arms": {"AB": "B", "HELD": "holdout"},
    }

    assert refund_touched(purchase, refund) == [
        Touch("BASE", None, -50, -50),
        Touch("AB", "B", -15, 0),
        Touch("HELD", "holdout", 0, 0),  # its amount comes off the holdout too
    ]
