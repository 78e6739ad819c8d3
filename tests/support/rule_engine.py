"""Small builders of campaigns, rules, events and members for the engine's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tally.rules.conditions import FieldType
from tally.rules.engine import Event, Item, Member
from tally.rules.rule_book import Award, CampaignSpec, RuleBook, RuleSpec, compile_book

ZONE = ZoneInfo("Asia/Shanghai")
WEDNESDAY_NOON = datetime(2026, 5, 6, 4, 0, tzinfo=UTC)  # 12:00 on Wednesday in Shanghai
FRIDAY_UTC_SATURDAY_HERE = datetime(2026, 5, 8, 17, 0, tzinfo=UTC)  # Saturday 01:00 here
D = Decimal


def rule(code: str, award: Award, priority: int = 0, **options: Any) -> RuleSpec:
    return RuleSpec(code, award, priority, **options)


def campaign(
    code: str, *rules: RuleSpec, on: tuple[str, ...] = ("purchase",), **options: Any
) -> CampaignSpec:
    return CampaignSpec(code, on, rules, **options)


def book(*campaigns: CampaignSpec) -> RuleBook:
    return compile_book(
        campaigns,
        ZONE,
        attributes={"survey_answered": {"questions": FieldType.INT}},
        aggregates={"purchases_30d": FieldType.INT},
    )


def purchase(
    amount: str | None = "200.00",
    at: datetime = WEDNESDAY_NOON,
    items: tuple[Item, ...] = (),
    type: str = "purchase",
    **options: Any,
) -> Event:
    return Event(
        type,
        at,
        amount=None if amount is None else D(amount),
        currency="CNY",
        items=items,
        **options,
    )


def item(sku: str, amount: str, category: str | None = None, *labels: str) -> Item:
    return Item(sku, D(amount), category=category, labels=labels)


def member(id: str = "m-1", **options: Any) -> Member:
    return Member(id, **options)
