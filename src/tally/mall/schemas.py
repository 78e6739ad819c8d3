"""The item contract (issue 12): what ``POST /v1/mall/items`` and ``tally mall items import``
take. Unknown fields are refused; no text may carry control or bidirectional characters."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from tally.kit import text
from tally.mall.domain import DEFAULT_SHIP_WITHIN, ItemKind, LimitPeriod, image_problem
from tally.programme.domain import Price

MAX_POINTS = 1_000_000_000
MAX_STOCK = 10**12
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ItemCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
PointsValue = Annotated[StrictInt, Field(ge=0, le=MAX_POINTS)]
Count = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class Strict(BaseModel):
    """Unknown fields are refused, and text carries no control or format characters."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=text.state_the_text_rule)

    @field_validator("*", mode="before")
    @classmethod
    def _no_unsafe_characters(cls, value: Any) -> Any:
        if isinstance(value, str):
            text.check(value)
        return value


def _checked_images(value: list[str] | None) -> list[str] | None:
    """Each image is an https URL or a path under /static/."""
    for url in value or []:
        problem = image_problem(url)
        if problem is not None:
            raise ValueError(f"{url!r}: {problem}")
    return value


class Texts(Strict):
    """Text in each language the mall shows: zh-CN and en."""

    zh_cn: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(alias="zh-CN")
    en: Annotated[str, StringConstraints(min_length=1, max_length=200)]

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra=text.state_the_text_rule
    )

    def as_dict(self) -> dict[str, str]:
        return {"zh-CN": self.zh_cn, "en": self.en}


class Descriptions(Texts):
    zh_cn: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(alias="zh-CN")
    en: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ItemPrice(Strict):
    """Points, and perhaps a cash part (``{"amount": "12.00", "currency": "CNY"}``, exact in the
    currency's minor units)."""

    points: PointsValue
    cash: Price | None = None

    @model_validator(mode="after")
    def _something(self) -> ItemPrice:
        if self.points == 0 and (self.cash is None or self.cash.money.minor_units == 0):
            raise ValueError("an item costs points, cash or both")
        if self.cash is not None and self.cash.money.minor_units == 0:
            raise ValueError("a cash part is above zero")
        return self


class PerMemberLimit(Strict):
    count: Count
    period: LimitPeriod = LimitPeriod.TOTAL


class ItemEligibility(Strict):
    """Who may buy: members of any of ``tiers`` or with any of the paid ``plans``."""

    tiers: list[ItemCode] = Field(default_factory=list, max_length=50)
    plans: list[ItemCode] = Field(default_factory=list, max_length=50)


class SaleIn(Strict):
    """A flash sale of the item: its own window, price, stock and per-member limit."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    points: PointsValue
    stock: Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)]
    per_member_limit: Count | None = None

    @model_validator(mode="after")
    def _window(self) -> SaleIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("a sale ends after it starts")
        return self


class SlotIn(Strict):
    """A booking item's time slot."""

    code: ItemCode
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    capacity: Count


ITEM_EXAMPLE: dict[str, Any] = {
    "code": "HEADPHONES",
    "kind": "physical",
    "names": {"zh-CN": "降噪耳机", "en": "Noise-cancelling headphones"},
    "descriptions": {"zh-CN": "顺丰包邮。", "en": "Shipped free by SF."},
    "categories": ["electronics"],
    "images": ["/static/mall/headphones.svg"],
    "price": {"points": 6000, "cash": {"amount": "99.00", "currency": "CNY"}},
    "tier_prices": {"GOLD": 5500},
    "stock": 30,
    "per_member_limit": {"count": 1, "period": "month"},
    "ship_within": "PT48H",
}


class ItemCreate(Strict):
    """A new item (the issue's ``POST /v1/mall/items`` body)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                ITEM_EXAMPLE,
                {
                    "code": "VIP88-CARD",
                    "kind": "plan",
                    "plan": "VIP88",
                    "names": {"zh-CN": "88会员年卡", "en": "88 VIP, one year"},
                    "price": {"points": 4400, "cash": {"amount": "44.00", "currency": "CNY"}},
                },
            ]
        },
    )

    code: ItemCode
    kind: ItemKind
    names: Texts
    descriptions: Descriptions | None = None
    categories: list[Category] = Field(default_factory=list, max_length=10)
    images: list[Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=list, max_length=10
    )
    price: ItemPrice
    tier_prices: dict[str, PointsValue] = Field(
        default_factory=dict, description="Points of one unit for members of each tier."
    )
    stock: Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)] | None = Field(
        default=None, description="Units left to sell; absent: unlimited."
    )
    per_member_limit: PerMemberLimit | None = None
    ship_within: Annotated[str, StringConstraints(max_length=32)] = DEFAULT_SHIP_WITHIN
    eligibility: ItemEligibility = Field(default_factory=ItemEligibility)
    exclusive: StrictBool = Field(
        default=False, description="Only members of a tier flagged mall_exclusive see and buy it."
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    sale: SaleIn | None = None
    slots: list[SlotIn] = Field(default_factory=list, max_length=200)
    low_water: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="A digital-code pool below this many codes raises an alert."
    )
    active: StrictBool = True
    plan: ItemCode | None = Field(
        default=None,
        description="A plan item: the programme plan it sells (a membership starts on payment).",
    )

    _images = field_validator("images")(_checked_images)

    @model_validator(mode="after")
    def _consistent(self) -> ItemCreate:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.kind is ItemKind.BOOKING and not self.slots:
            raise ValueError("a booking item has slots")
        if self.kind is not ItemKind.BOOKING and self.slots:
            raise ValueError("only a booking item has slots")
        if self.kind is ItemKind.DIGITAL_CODE and self.stock not in (None, 0):
            raise ValueError("a digital-code item's stock is its pool: upload codes instead")
        if (self.kind is ItemKind.PLAN) != (self.plan is not None):
            raise ValueError("a plan item names its plan; other items name none")
        if self.kind is ItemKind.PLAN and self.sale is not None:
            raise ValueError("a plan item has no flash sale")
        return self


class ItemUpdate(Strict):
    """Changes to an item: each field present replaces the item's (``null`` clears an optional
    one); the code and kind never change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"price": {"points": 5500}, "stock": 40}]},
    )

    names: Texts | None = None
    descriptions: Descriptions | None = None
    categories: list[Category] | None = Field(default=None, max_length=10)
    images: list[Annotated[str, StringConstraints(max_length=500)]] | None = Field(
        default=None, max_length=10
    )
    price: ItemPrice | None = None
    tier_prices: dict[str, PointsValue] | None = None
    stock: Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)] | None = None
    per_member_limit: PerMemberLimit | None = None
    ship_within: Annotated[str, StringConstraints(max_length=32)] | None = None
    eligibility: ItemEligibility | None = None
    exclusive: StrictBool | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    sale: SaleIn | None = None
    slots: list[SlotIn] | None = Field(default=None, max_length=200)
    low_water: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = None
    active: StrictBool | None = None

    _images = field_validator("images")(_checked_images)
