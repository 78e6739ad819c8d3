"""Pure rules of campaign operations: a campaign's status, which campaigns an outcome touched
(and for how much, in which arm), the arms a campaign's results list, the programme's day."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tally.rules.engine import HOLDOUT, Reason
from tally.rules.rule_book import CampaignSpec

#: Skip reasons that mean the campaign never looked at the event: not counted in its results.
UNTOUCHED = frozenset(
    {Reason.NOT_THIS_EVENT_TYPE.value, Reason.OUTSIDE_SCHEDULE.value, Reason.PAUSED.value}
)


class Status(enum.StrEnum):
    """Where a campaign stands at a moment."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


def status_of(campaign: CampaignSpec, *, paused: bool, today: date) -> Status:
    """``ended`` after its last day, else ``paused`` while paused, else ``scheduled`` before
    its first day, else ``running`` (days in the programme's zone)."""
    if campaign.ends is not None and today > campaign.ends:
        return Status.ENDED
    if paused:
        return Status.PAUSED
    if campaign.starts is not None and today < campaign.starts:
        return Status.SCHEDULED
    return Status.RUNNING


def day_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The programme's day holding ``now``: its first instant and the next day's, aware."""
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


@dataclass(frozen=True, slots=True)
class Touch:
    """What an event gave a campaign whose rules it reached, in the member's arm."""

    campaign: str
    arm: str | None
    points: int
    growth: int


def touched(outcome: Mapping[str, Any]) -> list[Touch]:
    """The campaigns a stored outcome document reached — a rule applied, or skipped for a
    reason other than :data:`UNTOUCHED` (a holdout, a false condition, a cap included) — with
    the points and growth their rules gave, in the arm the outcome recorded."""
    arms: Mapping[str, str | None] = outcome.get("arms", {})
    given: dict[str, list[int]] = {}
    for rule in outcome["rules"]:
        total = given.setdefault(rule["campaign"], [0, 0])
        total[0] += int(rule["points"])
        total[1] += int(rule["growth"])
    for skipped in outcome["skipped"]:
        if skipped["reason"] not in UNTOUCHED:
            given.setdefault(skipped["campaign"], [0, 0])
    return [Touch(code, arms.get(code), points, growth) for code, (points, growth) in given.items()]


def refund_touched(purchase: Mapping[str, Any], refund: Mapping[str, Any]) -> list[Touch]:
    """What a refund takes back from each campaign its purchase reached (:func:`touched`), in
    the purchase's arms: the points and growth its lines took back (negative; zero for a
    campaign that gave nothing)."""
    taken: dict[str, list[int]] = {}
    for rule in refund["rules"]:
        total = taken.setdefault(rule["campaign"], [0, 0])
        total[0] += int(rule["points"])
        total[1] += int(rule["growth"])
    return [
        Touch(touch.campaign, touch.arm, *taken.get(touch.campaign, [0, 0]))
        for touch in touched(purchase)
    ]


def arms_of(campaign: CampaignSpec) -> list[str | None]:
    """The arms a campaign's results list, in order: its variants (or ``None``, the campaign
    as written, when it has none), then ``holdout`` when it holds members out."""
    arms: list[str | None] = [variant.code for variant in campaign.variants] or [None]
    return [*arms, HOLDOUT] if campaign.holdout_bp > 0 else arms


@dataclass(frozen=True, slots=True)
class ArmResult:
    """One arm's totals: distinct members, events, points, growth, and the events' amounts in
    minor units of the programme's currency."""

    arm: str | None
    members: int = 0
    events: int = 0
    points: int = 0
    growth: int = 0
    amount_minor: int = 0
