"""The earning-rule engine: one event and one member through a programme's rule book.

Pure: no clock, no database. The caller loads what the counters have left
(:func:`counter_limits` names them), calls :func:`evaluate`, and persists the outcome's
``consumption`` with conditional updates (``used + n <= limit``) in the posting transaction;
the simulator and dry runs call the same function and persist nothing.

    book = compile_book(campaigns, ZoneInfo("Asia/Shanghai"))
    outcome = evaluate(book, event, member, remaining={"budget:BASE": 120})
    outcome.points, outcome.applied, outcome.skipped, outcome.consumption

Semantics (docs/rules.md): rules run in the book's order (priority, then file order); an award
on money rounds down; ``multiply`` adds to what was accrued so far; caps and budgets cut a
grant to what is left; ``stop`` ends the evaluation when its rule fires (its conditions held).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Context, Decimal
from enum import StrEnum
from typing import Any

from tally.rules.rule_book import (
    BUCKETS,
    Award,
    Badge,
    CampaignSpec,
    Cap,
    CapPer,
    CompiledRule,
    Coupon,
    FixedGrowth,
    FixedPoints,
    GrowthPer,
    Multiply,
    Period,
    PointsPer,
    RuleBook,
)

HOLDOUT = "holdout"  # the arm of members held out of a campaign
_EXACT = Context(prec=60)


class Reason(StrEnum):
    """Why a rule gave nothing (or less than its award)."""

    CONDITION_FALSE = "condition_false"
    CAPPED = "capped"
    BUDGET_EXHAUSTED = "budget_exhausted"
    OUTSIDE_SCHEDULE = "outside_schedule"
    NOT_THIS_EVENT_TYPE = "not_this_event_type"
    HOLDOUT = "holdout"
    STOPPED_BY_HIGHER_RULE = "stopped_by_higher_rule"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Item:
    """A line of an event; ``amount`` is the line's total."""

    sku: str
    amount: Decimal
    quantity: int = 1
    name: str | None = None
    category: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """What happened; ``amount`` in the programme's currency, ``occurred_at`` aware."""

    type: str
    occurred_at: datetime
    partner: str | None = None
    channel: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    items: tuple[Item, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Member:
    """What conditions and awards read of the member at the event."""

    id: str
    tier: str | None = None
    tier_multiplier: Decimal = Decimal(1)
    plans: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    days_since_enrolment: int | None = None
    birthday_today: bool = False
    aggregates: Mapping[str, int | Decimal] = field(default_factory=dict)
    sign_in_streak: int = 0  # consecutive days signed in, up to the event's day
    sign_in_streak_broken: bool = False  # signed in before, but not yesterday or today


@dataclass(frozen=True, slots=True)
class Applied:
    """A rule that fired: what it gave, in which arm, what caps or budget cut from it and
    the counters its points count against (what a refund gives back)."""

    campaign: str
    rule: str
    points: int
    growth: int = 0
    variant: str | None = None
    badge: str | None = None
    coupon: str | None = None  # the template of the coupon the rule gives
    cut: int = 0
    cut_by: Reason | None = None
    counters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    campaign: str
    rule: str
    reason: Reason
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The rules applied (in order) and skipped, each campaign's arm, and what each counter
    key consumed: points, or for a times cap the one event (counted once per campaign)."""

    applied: tuple[Applied, ...]
    skipped: tuple[Skipped, ...]
    consumption: Mapping[str, int]
    arms: Mapping[str, str | None]

    @property
    def points(self) -> int:
        return sum(applied.points for applied in self.applied)

    @property
    def growth(self) -> int:
        return sum(applied.growth for applied in self.applied)

    @property
    def badges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.badge for a in self.applied if a.badge is not None))

    @property
    def coupons(self) -> tuple[Applied, ...]:
        """The rules that give a coupon (the template is each one's ``coupon``)."""
        return tuple(a for a in self.applied if a.coupon is not None)


def bucket(member_id: str, campaign_code: str) -> int:
    """The member's place in a campaign's test, 0 to 9,999: the same for ever."""
    digest = hashlib.sha256(f"{campaign_code}\x00{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_of(member_id: str, campaign: CampaignSpec) -> str | None:
    """``holdout``, the code of the member's variant, or None (the campaign as written)."""
    if not campaign.is_tested:
        return None
    place = bucket(member_id, campaign.code)
    if place < campaign.holdout_bp:
        return HOLDOUT
    if not campaign.variants:
        return None
    total = sum(variant.weight for variant in campaign.variants)
    position = (place - campaign.holdout_bp) * total // (BUCKETS - campaign.holdout_bp)
    for variant in campaign.variants:
        if position < variant.weight:
            return variant.code
        position -= variant.weight
    raise AssertionError("the weights cover every position")


def budget_key(campaign: str) -> str:
    return f"budget:{campaign}"


def cap_key(campaign: str, index: int, period: Period, member_id: str, day: date) -> str:
    """The counter of cap ``index`` of ``campaign`` for the member in the period of ``day``."""
    match period:
        case Period.DAY:
            window = day.isoformat()
        case Period.WEEK:
            year, week, _ = day.isocalendar()
            window = f"{year}-W{week:02d}"
        case Period.MONTH:
            window = f"{day.year}-{day.month:02d}"
        case Period.CAMPAIGN:
            window = "campaign"
    return f"cap:{campaign}:{index}:{member_id}:{window}"


def _in_schedule(campaign: CampaignSpec, day: date) -> bool:
    return (campaign.starts is None or campaign.starts <= day) and (
        campaign.ends is None or day <= campaign.ends
    )


def _limits(
    campaign: CampaignSpec, member_id: str, day: date
) -> list[tuple[str, int, Reason, Cap | None]]:
    """The campaign's counters (budget first) with their limits and, for a cap, the cap;
    per-event caps included, under keys starting with ``event:`` that are never persisted.
    A times cap's counter counts the events the campaign fired on, not points."""
    limits: list[tuple[str, int, Reason, Cap | None]] = []
    if campaign.budget is not None:
        limits.append((budget_key(campaign.code), campaign.budget, Reason.BUDGET_EXHAUSTED, None))
    for index, cap in enumerate(campaign.caps):
        if cap.per is CapPer.EVENT:
            key = f"event:{campaign.code}:{index}"
        else:
            assert cap.period is not None
            key = cap_key(campaign.code, index, cap.period, member_id, day)
        limit = cap.points if cap.points is not None else cap.times
        assert limit is not None
        limits.append((key, limit, Reason.CAPPED, cap))
    return limits


def _times_detail(cap: Cap) -> str:
    """``at most once, 0 left``, ``at most 3 times a week, 0 left``."""
    times = "once" if cap.times == 1 else f"{cap.times} times"
    period = "" if cap.period is Period.CAMPAIGN else f" a {cap.period}"
    return f"at most {times}{period}, 0 left"


def counter_limits(book: RuleBook, event: Event, member_id: str) -> dict[str, int]:
    """The persisted counters ``event`` may consume, with their limits: what the caller loads
    to say what is left."""
    day = event.occurred_at.astimezone(book.zone).date()
    return {
        key: limit
        for campaign in book.campaigns
        if event.type in campaign.on and _in_schedule(campaign, day)
        for key, limit, _, _ in _limits(campaign, member_id, day)
        if not key.startswith("event:")
    }


def _floor(value: Decimal) -> int:
    return max(0, int(value.to_integral_value(rounding=ROUND_FLOOR)))


def _per(amount: Decimal | None, unit: Decimal, count: int) -> int:
    """``count`` for each ``unit`` of ``amount``, rounded down; nothing for no amount."""
    if amount is None or amount <= 0:
        return 0
    return int(_EXACT.divide_int(_EXACT.multiply(amount, count), unit))


def _multiplied(points: int, factor: Decimal) -> int:
    """The points a multiplication adds to ``points`` (rounded down, never negative)."""
    return max(0, _floor(_EXACT.multiply(Decimal(points), factor)) - points)


def _env(event: Event, member: Member, local: datetime) -> dict[str, Any]:
    return {
        "event": {
            "type": event.type,
            "partner": event.partner,
            "channel": event.channel,
            "amount": event.amount,
            "currency": event.currency,
            "weekday": local.isoweekday(),
            "hour": local.hour,
            "attributes": dict(event.attributes),
        },
        "member": {
            **member.aggregates,
            "tier": member.tier,
            "plans": list(member.plans),
            "tags": list(member.tags),
            "days_since_enrolment": member.days_since_enrolment,
            "birthday_today": member.birthday_today,
            "sign_in_streak": member.sign_in_streak,
            "sign_in_streak_broken": member.sign_in_streak_broken,
        },
    }


def _item_env(env: Mapping[str, Any], item: Item) -> dict[str, Any]:
    return {
        **env,
        "item": {
            "sku": item.sku,
            "name": item.name,
            "category": item.category,
            "labels": list(item.labels),
            "quantity": item.quantity,
            "amount": item.amount,
        },
    }


class _Run:
    """The state of one evaluation."""

    def __init__(
        self,
        book: RuleBook,
        event: Event,
        member: Member,
        remaining: Mapping[str, int],
        paused: Collection[str],
    ) -> None:
        self.event = event
        self.paused = paused
        self.member = member
        local = event.occurred_at.astimezone(book.zone)
        self.day = local.date()
        self.env = _env(event, member, local)
        self.item_envs = [_item_env(self.env, item) for item in event.items]
        self.item_points = [0] * len(event.items)
        self.accrued = 0
        self.counters: dict[str, list[tuple[str, Reason]]] = {}  # of points
        self.times: dict[str, list[tuple[str, Cap]]] = {}  # of events fired on
        self.counted: set[str] = set()  # campaigns this event already counted against times
        self.left: dict[str, int] = {}
        for campaign in book.campaigns:
            limits = _limits(campaign, member.id, self.day)
            self.counters[campaign.code] = [
                (key, reason) for key, _, reason, cap in limits if cap is None or cap.times is None
            ]
            self.times[campaign.code] = [
                (key, cap) for key, _, _, cap in limits if cap is not None and cap.times is not None
            ]
            for key, limit, _, _ in limits:
                self.left[key] = max(0, min(limit, remaining.get(key, limit)))
        self.consumption: dict[str, int] = {}
        self.arms = {c.code: arm_of(member.id, c) for c in book.campaigns if c.is_tested}
        self.applied: list[Applied] = []
        self.skipped: list[Skipped] = []
        self.stopped = False

    def run(self, rule: CompiledRule) -> None:
        campaign, spec = rule.campaign, rule.spec

        def skip(reason: Reason, detail: str | None = None) -> None:
            self.skipped.append(Skipped(campaign.code, spec.code, reason, detail))

        arm = self.arms.get(campaign.code)
        if self.event.type not in campaign.on:
            return skip(Reason.NOT_THIS_EVENT_TYPE)
        if not _in_schedule(campaign, self.day):
            return skip(Reason.OUTSIDE_SCHEDULE, self.day.isoformat())
        if campaign.code in self.paused:
            return skip(Reason.PAUSED)
        if self.stopped:
            return skip(Reason.STOPPED_BY_HIGHER_RULE)
        if arm == HOLDOUT:
            return skip(Reason.HOLDOUT)
        if rule.when is not None and not rule.when.evaluate(self.env):
            return skip(Reason.CONDITION_FALSE, f"when: {rule.when.explain(self.env)}")
        matching = None
        if rule.items is not None:
            matching = [i for i, env in enumerate(self.item_envs) if rule.items.evaluate(env)]
            if not matching:
                detail = (
                    f"items: {rule.items.explain(self.item_envs[0])}"
                    if self.item_envs
                    else "items: the event has no items"
                )
                return skip(Reason.CONDITION_FALSE, detail)
        variant = next((v for v in campaign.variants if v.code == arm), None)
        award = variant.awards.get(spec.code, spec.award) if variant else spec.award
        on_amount = isinstance(award, PointsPer | GrowthPer) and matching is None
        if on_amount and self.event.amount is None:
            return skip(Reason.CONDITION_FALSE, "the event has no amount")
        self.stopped = spec.stop
        if campaign.code not in self.counted:
            spent = [cap for key, cap in self.times[campaign.code] if self.left[key] < 1]
            if spent:
                return skip(Reason.CAPPED, _times_detail(spent[0]))
        shares, growth = self._award(award, matching)
        asked = sum(shares)
        granted, cut_by = self._grant(campaign.code, asked)
        if matching is not None and isinstance(award, PointsPer | Multiply):
            self._attribute(shares, matching, granted)
        if asked and not granted:
            assert cut_by is not None
            return skip(cut_by, f"asked {asked}, 0 left")
        self.applied.append(
            Applied(
                campaign=campaign.code,
                rule=spec.code,
                points=granted,
                growth=growth,
                variant=arm,
                badge=award.code if isinstance(award, Badge) else None,
                coupon=award.template if isinstance(award, Coupon) else None,
                cut=asked - granted,
                cut_by=cut_by,
                counters=self._persisted(campaign.code) if granted else (),
            )
        )
        self._count(campaign.code)
        return None

    def _count(self, campaign: str) -> None:
        """Count this event once against the campaign's times caps."""
        if campaign in self.counted:
            return
        self.counted.add(campaign)
        for key, _ in self.times[campaign]:
            self.left[key] -= 1
            self.consumption[key] = self.consumption.get(key, 0) + 1

    def _award(self, award: Award, matching: list[int] | None) -> tuple[list[int], int]:
        """The points asked, one share per matching item (or one for the event), and the
        growth."""
        items = self.event.items
        amounts = [self.event.amount] if matching is None else [items[i].amount for i in matching]
        match award:
            case PointsPer(unit, points):
                return [_per(amount, unit, points) for amount in amounts], 0
            case GrowthPer(unit, growth):
                return [], sum(_per(amount, unit, growth) for amount in amounts)
            case FixedPoints(points):
                return [points], 0
            case FixedGrowth(growth):
                return [], growth
            case Multiply(factor):
                factor = self.member.tier_multiplier if factor is None else factor
                if matching is None:
                    return [_multiplied(self.accrued, factor)], 0
                return [_multiplied(self.item_points[i], factor) for i in matching], 0
            case Badge() | Coupon():
                return [], 0

    def _persisted(self, campaign: str) -> tuple[str, ...]:
        return tuple(key for key, _ in self.counters[campaign] if not key.startswith("event:"))

    def _grant(self, campaign: str, asked: int) -> tuple[int, Reason | None]:
        """``asked`` cut to what every counter of the campaign has left, consumed."""
        granted, cut_by = asked, None
        for key, reason in self.counters[campaign]:
            if self.left[key] < granted:
                granted, cut_by = self.left[key], reason
        for key, _ in self.counters[campaign]:
            self.left[key] -= granted
            if granted and not key.startswith("event:"):
                self.consumption[key] = self.consumption.get(key, 0) + granted
        self.accrued += granted
        return granted, cut_by

    def _attribute(self, shares: list[int], matching: list[int], granted: int) -> None:
        """Credit the granted points to the matching items, in order, for later multiplies."""
        for index, share in zip(matching, shares, strict=True):
            credited = min(share, granted)
            self.item_points[index] += credited
            granted -= credited


def evaluate(
    book: RuleBook,
    event: Event,
    member: Member,
    remaining: Mapping[str, int] | None = None,
    *,
    paused: Collection[str] = frozenset(),
) -> Outcome:
    """The outcome of ``event`` for ``member``. ``remaining`` says what each counter of
    :func:`counter_limits` has left (never more than its limit); a counter not in it has its
    whole limit. The rules of the campaigns in ``paused`` give nothing (skipped as ``paused``)."""
    run = _Run(book, event, member, remaining or {}, paused)
    for rule in book.rules:
        run.run(rule)
    return Outcome(tuple(run.applied), tuple(run.skipped), run.consumption, run.arms)
