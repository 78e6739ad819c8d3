"""The earning side of the programme file: event types, member aggregates, badges, and
campaigns with their rules (docs/rules.md).

Field checks live on the models; checks across fields and of the conditions are
:mod:`tally.programme.campaign_checks`'s, and :mod:`tally.programme.campaign_rules` turns
these models into the engine's rule book.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from tally.programme.shapes import Code, DecimalText, Names, Strict, decimal_text

#: Event types and attribute names are identifiers (they are read by conditions).
IDENTIFIER = r"^[a-z][a-z0-9_]{0,63}$"
EventCode = Annotated[str, Field(pattern=IDENTIFIER)]
AttributeType = Literal["int", "decimal", "string", "bool", "list"]
MAX_POINTS = 1_000_000_000
MAX_BUDGET = 10**15
MAX_PRIORITY = 1_000_000
MAX_FACTOR = Decimal(100)
DECIMAL_PLACES = 4


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


class EventTypeSpec(Strict):
    """A custom event type, or attributes for a built-in one."""

    code: EventCode
    attributes: dict[Annotated[str, Field(pattern=IDENTIFIER)], AttributeType] = Field(
        default_factory=dict,
        description="Attributes the events of this type carry, by name: int, decimal, string, "
        "bool or list (of strings); conditions read them as event.attributes.<name>.",
    )


class AggregateSpec(Strict):
    """A count or sum of the member's events over the last ``days``, read as member.<code>."""

    code: EventCode
    of: EventCode = Field(description="The event type counted.")
    measure: Literal["count", "sum_amount"]
    days: int = Field(ge=1, le=3650)


class BadgeSpec(Strict):
    code: Code
    names: Names


class PerAmount(Strict):
    """Points (or growth) for each ``amount`` of money, rounded down."""

    amount: DecimalText = Field(description='Decimal string, e.g. "1.00".')

    _amount = field_validator("amount", mode="before")(decimal_text)

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: str) -> str:
        if Decimal(value) <= 0:
            raise ValueError("must be above 0")
        return value


class PointsPerAmount(PerAmount):
    points: int = Field(ge=1, le=MAX_POINTS)


class GrowthPerAmount(PerAmount):
    growth: int = Field(ge=1, le=MAX_POINTS)


class Award(Strict):
    """What a rule gives: exactly one of its fields."""

    points_per: PointsPerAmount | None = None
    points: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    multiply: str | None = Field(
        default=None,
        description='A decimal factor of at least 1 ("1.5"), or "tier": the member\'s tier '
        "multiplier.",
    )
    growth_per: GrowthPerAmount | None = None
    growth: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    badge: Code | None = None
    coupon: Code | None = Field(
        default=None,
        description="The code of a coupon template: one of its codes goes into the member's "
        "wallet, in the event's transaction (once per event and rule).",
    )

    @field_validator("multiply")
    @classmethod
    def _factor(cls, value: str | None) -> str | None:
        if value is None or value == "tier":
            return value
        factor = Decimal(decimal_text(value))
        if not 1 <= factor <= MAX_FACTOR or _places(factor) > DECIMAL_PLACES:
            raise ValueError('must be "tier" or a decimal from 1 to 100, at most 4 decimals')
        return value

    @model_serializer(mode="wrap")
    def _only_the_effect(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}

    @model_validator(mode="after")
    def _one_effect(self) -> Award:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                "an award has exactly one of points_per, points, multiply, growth_per, growth, "
                f"badge, coupon; got {', '.join(given) or 'none'}"
            )
        return self


class Rule(Strict):
    code: Code
    priority: int = Field(
        default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Higher runs first."
    )
    when: str | None = Field(default=None, description="A condition on the event and member.")
    items: str | None = Field(default=None, description="A condition on each line item.")
    award: Award
    stop: bool = Field(default=False, description="End the evaluation when this rule fires.")


def _day(value: Any) -> Any:
    """A date (YAML's ``2026-01-01``, or its ISO text in a stored version), not a datetime."""
    if isinstance(value, datetime):
        raise ValueError("must be a date such as 2026-01-01, without a time")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date such as 2026-01-01, got {value!r}") from None
    return value


class Schedule(Strict):
    """Days in the programme's zone, both included."""

    from_: date | None = Field(default=None, alias="from", description="First day.")
    until: date | None = Field(default=None, description="Last day.")

    _days = field_validator("from_", "until", mode="before")(_day)


class Cap(Strict):
    """At most ``points`` from the campaign, or at most ``times`` events it fires on (one of
    the two), per event or per member in each period."""

    per: Literal["member", "event"]
    period: Literal["day", "week", "month", "campaign"] | None = Field(
        default=None, description="For per: member only (weeks from Monday)."
    )
    points: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    times: int | None = Field(
        default=None,
        ge=1,
        le=MAX_POINTS,
        description="At most this many events the campaign fires on, per member and period "
        "(share at most 3 times a week; period: campaign with times: 1 for a one-time task).",
    )

    @model_serializer(mode="wrap")
    def _only_the_limit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}

    @model_validator(mode="after")
    def _period(self) -> Cap:
        if (self.points is None) == (self.times is None):
            raise ValueError("a cap limits either points or times, exactly one of them")
        if (self.per == "member") != (self.period is not None):
            raise ValueError("a per-member cap has a period; a per-event cap has none")
        if self.per == "event" and self.times is not None:
            raise ValueError("a per-event cap limits points; times are counted per member")
        return self


class Budget(Strict):
    points: int = Field(ge=1, le=MAX_BUDGET)


class RuleOverride(Strict):
    award: Award


class Variant(Strict):
    """An arm of the campaign's A/B test."""

    code: Code
    weight: int = Field(ge=1, le=10_000)
    rules_override: dict[Code, RuleOverride] = Field(
        default_factory=dict, description="Awards this arm gives instead, by rule code."
    )


class Task(Strict):
    """The campaign shown to members as a task with progress ("shared 2 of 3 this week"),
    counted by the campaign's times cap of the same period."""

    names: Names | None = Field(default=None, description="Defaults to the campaign's names.")
    goal: int = Field(ge=1, le=10_000, description="Events to do in each period.")
    period: Literal["day", "week", "month", "campaign"]


class Campaign(Strict):
    code: Code
    names: Names
    on: list[EventCode] = Field(min_length=1, description="The event types it runs on.")
    task: Task | None = Field(default=None, description="Shown to members as a task.")
    schedule: Schedule | None = None
    caps: list[Cap] = Field(default_factory=list, max_length=10)
    budget: Budget | None = None
    variants: list[Variant] = Field(default_factory=list, max_length=20)
    holdout: DecimalText | None = Field(
        default=None, description='The share of members held out, e.g. "0.10".'
    )
    rules: list[Rule] = Field(min_length=1, max_length=100)

    @field_validator("holdout", mode="before")
    @classmethod
    def _share(cls, value: Any) -> str | None:
        if value is None:
            return None
        share = Decimal(decimal_text(value))
        if not share < 1 or _places(share) > DECIMAL_PLACES:
            raise ValueError("must be below 1, with at most 4 decimals")
        return str(value)

    @property
    def holdout_bp(self) -> int:
        """The holdout in ten-thousandths: "0.10" → 1000."""
        return int(Decimal(self.holdout or "0") * 10_000)


class Referral(Strict):
    """Members refer new members with their referral code; the referred member's first event
    of a ``qualifying`` type raises ``referral_completed`` for both (docs/rules.md)."""

    qualifying: list[EventCode] = Field(
        min_length=1, description="The event types that complete a referral, e.g. [purchase]."
    )
    share_url: str | None = Field(
        default=None,
        pattern=r"^https://[^\s{}]+\{code\}[^\s{}]*$",
        max_length=300,
        description="The link members share, with {code} for their referral code, e.g. "
        '"https://app.example.com/join?ref={code}".',
    )


def task_cap(campaign: Campaign) -> int | None:
    """The index of the times cap that counts the campaign's task: per member, of the task's
    period, of at least its goal (the first such); None without one."""
    task = campaign.task
    if task is None:
        return None
    return next(
        (
            index
            for index, cap in enumerate(campaign.caps)
            if cap.per == "member"
            and cap.period == task.period
            and cap.times is not None
            and cap.times >= task.goal
        ),
        None,
    )
