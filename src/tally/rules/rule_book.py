"""The campaigns of one programme version as the engine reads them, and their compilation.

Plain frozen values (exact decimals, integers, dates): the programme file's models turn into
these (``tally.programme.campaign_rules``), and :func:`compile_book` compiles every condition
once per version into a :class:`RuleBook` whose rules stand in evaluation order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from tally.rules.conditions import Condition, FieldType, Schema, compile_condition, default_schema

#: Event types every programme knows; a programme may declare attributes for them and add others.
BUILT_IN_EVENT_TYPES = (
    "purchase",
    "bill_paid",
    "refund",
    "sign_in",
    "share",
    "review",
    "content_read",
    "profile_completed",
    "member_enrolled",
    "referral_completed",
)
#: Types Tally raises itself, and the attributes it gives them.
RAISED_BY_TALLY = ("member_enrolled", "referral_completed")
BUILT_IN_ATTRIBUTES: Mapping[str, Mapping[str, FieldType]] = {
    "referral_completed": {"role": FieldType.STRING},  # referrer or referred
}
BUCKETS = 10_000  # A/B arms and holdout shares are counted in ten-thousandths


@dataclass(frozen=True, slots=True)
class PointsPer:
    """``points`` for each ``amount`` of money (of the event, or of each matching item)."""

    amount: Decimal
    points: int


@dataclass(frozen=True, slots=True)
class FixedPoints:
    points: int


@dataclass(frozen=True, slots=True)
class Multiply:
    """Multiply the points accrued so far; ``factor`` None is the member's tier multiplier."""

    factor: Decimal | None


@dataclass(frozen=True, slots=True)
class GrowthPer:
    amount: Decimal
    growth: int


@dataclass(frozen=True, slots=True)
class FixedGrowth:
    growth: int


@dataclass(frozen=True, slots=True)
class Badge:
    code: str


@dataclass(frozen=True, slots=True)
class Coupon:
    """A code of the coupon template ``template`` into the member's wallet."""

    template: str


Award = PointsPer | FixedPoints | Multiply | GrowthPer | FixedGrowth | Badge | Coupon


class CapPer(StrEnum):
    MEMBER = "member"
    EVENT = "event"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``points`` from the campaign per event, or per member in each ``period``; or
    (``points`` None) at most ``times`` events of the member it fires on in each ``period``."""

    per: CapPer
    points: int | None
    period: Period | None = None  # for per member only
    times: int | None = None  # for per member only, instead of points


@dataclass(frozen=True, slots=True)
class Variant:
    """An arm of an A/B test: its share by ``weight``, and the awards it gives instead of the
    rules' own (by rule code)."""

    code: str
    weight: int
    awards: Mapping[str, Award] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    code: str
    award: Award
    priority: int = 0
    when: str | None = None
    items: str | None = None
    stop: bool = False


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A campaign; ``starts`` and ``ends`` are days in the programme's zone, both included."""

    code: str
    on: tuple[str, ...]
    rules: tuple[RuleSpec, ...]
    starts: date | None = None
    ends: date | None = None
    caps: tuple[Cap, ...] = ()
    budget: int | None = None
    variants: tuple[Variant, ...] = ()
    holdout_bp: int = 0  # ten-thousandths of the members held out

    @property
    def is_tested(self) -> bool:
        """Whether members are assigned to arms (variants or a holdout)."""
        return bool(self.variants) or self.holdout_bp > 0


@dataclass(frozen=True, slots=True)
class CompiledRule:
    campaign: CampaignSpec
    spec: RuleSpec
    when: Condition | None
    items: Condition | None


@dataclass(frozen=True, slots=True)
class RuleBook:
    """A programme version's campaigns, compiled; ``rules`` in evaluation order (priority,
    higher first; ties in file order, campaign by campaign)."""

    zone: ZoneInfo
    campaigns: tuple[CampaignSpec, ...]
    rules: tuple[CompiledRule, ...]
    event_types: Mapping[str, Mapping[str, FieldType]]  # every known type: its attributes


def campaign_schema(
    on: Iterable[str],
    attributes: Mapping[str, Mapping[str, FieldType]],
    aggregates: Mapping[str, FieldType],
    *,
    items: bool,
) -> Schema:
    """The fields a campaign's conditions may read: the attributes of the event types it is
    on (a ValueError when two declare one name with different types), the aggregates, and
    ``item.*`` for an ``items`` condition."""
    declared: dict[str, FieldType] = {}
    for event_type in on:
        for name, kind in attributes.get(event_type, {}).items():
            if declared.setdefault(name, kind) != kind:
                raise ValueError(
                    f"attribute {name!r} is {declared[name]} on one event type and {kind} on "
                    f"{event_type}"
                )
    return default_schema(attributes=declared, aggregates=aggregates, items=items)


def compile_rule(
    campaign: CampaignSpec,
    rule: RuleSpec,
    attributes: Mapping[str, Mapping[str, FieldType]],
    aggregates: Mapping[str, FieldType],
) -> CompiledRule:
    """The rule with its conditions compiled (a ConditionError when one is wrong)."""
    when = items = None
    if rule.when is not None:
        schema = campaign_schema(campaign.on, attributes, aggregates, items=False)
        when = compile_condition(rule.when, schema)
    if rule.items is not None:
        schema = campaign_schema(campaign.on, attributes, aggregates, items=True)
        items = compile_condition(rule.items, schema)
    return CompiledRule(campaign, rule, when, items)


def compile_book(
    campaigns: Iterable[CampaignSpec],
    zone: ZoneInfo,
    attributes: Mapping[str, Mapping[str, FieldType]] | None = None,
    aggregates: Mapping[str, FieldType] | None = None,
) -> RuleBook:
    """Compile every rule once; ``attributes`` by event type, ``aggregates`` by name."""
    campaigns = tuple(campaigns)
    compiled = [
        compile_rule(campaign, rule, attributes or {}, aggregates or {})
        for campaign in campaigns
        for rule in campaign.rules
    ]
    ordered = sorted(compiled, key=lambda rule: -rule.spec.priority)  # stable: file order
    event_types: dict[str, Mapping[str, FieldType]] = {code: {} for code in BUILT_IN_EVENT_TYPES}
    event_types.update(BUILT_IN_ATTRIBUTES)
    event_types.update(attributes or {})
    return RuleBook(zone, campaigns, tuple(ordered), event_types)
