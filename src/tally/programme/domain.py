"""The programme file's model: currency, tier ladder, tier model, paid plans and partners.

Pure (no database). Money and multipliers are decimal *strings* in the file, never floats; the
model turns them into integers (minor units, basis points). Field checks live on the models;
checks across fields (:func:`cross_check`) name the path of the field they refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from tally.programme.campaigns import (
    AggregateSpec,
    BadgeSpec,
    Campaign,
    EventTypeSpec,
    Referral,
)
from tally.programme.shapes import (
    Code,
    DecimalText,
    Names,
    Path,
    Problem,
    Strict,
    format_path,
)
from tally.programme.shapes import decimal_text as _decimal_text

# ISO 4217 codes and their minor-unit exponents (the currencies an operator is likely to use).
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "IDR": 2, "INR": 2, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3,
    "MOP": 2, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2, "QAR": 2,
    "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip
TERM_PATTERN = re.compile(r"^P([1-9][0-9]{0,3})([DMY])$")
MAX_MULTIPLIER_BP = 1_000_000  # 100x
#: The member pages' themes (``.theme-<name>`` in tally.css; ``default`` needs no rule).
THEMES = ("default", "black-gold")


Count = Annotated[int, Field(ge=0)]


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of money: integer minor units of an ISO 4217 currency."""

    minor_units: int
    currency: str

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENTS[self.currency]
        return f"{Decimal(self.minor_units).scaleb(-exponent):.{exponent}f} {self.currency}"


@dataclass(frozen=True, slots=True)
class PointRate:
    """What points are worth: ``points`` points are worth ``minor_units`` of ``currency``."""

    points: int
    minor_units: int
    currency: str


@dataclass(frozen=True, slots=True)
class Pricing:
    """What prices a write: the programme version in force (``None``: the built-in default)
    and what a point is worth under it."""

    version: int | None
    rate: PointRate


class Amount(Strict):
    """Money as written in the file: ``{amount: "88.00", currency: CNY}``."""

    amount: DecimalText = Field(description='Decimal string, e.g. "88.00"; never a number.')
    currency: str = Field(description="ISO 4217 code, e.g. CNY.", pattern=r"^[A-Z]{3}$")

    _amount = field_validator("amount", mode="before")(_decimal_text)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"{value!r} is not a known ISO 4217 currency code")
        return value

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.amount)

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]


class Price(Amount):
    """A price: exact in the currency's minor units ("88.00" CNY, not "88.001")."""

    @model_validator(mode="after")
    def _exact(self) -> Price:
        if self.decimal.as_tuple().exponent < -self.exponent:  # type: ignore[operator]
            raise ValueError(
                f"amount {self.amount} has more decimals than {self.currency} allows "
                f"({self.exponent})"
            )
        return self

    @property
    def money(self) -> Money:
        return Money(int(self.decimal.scaleb(self.exponent)), self.currency)


class PointValue(Amount):
    """The money one point is worth, e.g. ``"0.01"`` CNY: 100 points = 1 CNY."""

    @model_validator(mode="after")
    def _positive(self) -> PointValue:
        if self.decimal <= 0:
            raise ValueError("a point must be worth more than nothing")
        return self

    @property
    def rate(self) -> PointRate:
        """The smallest whole ``points → minor units`` pair: "0.01" CNY → 1 point = 1 fen."""
        minor = self.decimal.scaleb(self.exponent)
        points = 1
        while minor != minor.to_integral_value():
            minor *= 10
            points *= 10
        return PointRate(points, int(minor), self.currency)


class Currency(Strict):
    """The points currency."""

    code: Code = Field(description="Short code of the points currency, e.g. AIB.")
    names: Names
    point_value: PointValue = Field(description="Money one point is worth.")
    default_validity_days: int = Field(ge=1, le=36_500, description="Life of earned points.")
    timezone: str = Field(description="IANA zone the programme's days are counted in.")
    exchange_rates: dict[str, DecimalText] = Field(
        default_factory=dict,
        description="Other currencies events may be reported in: a unit of each is worth this "
        'much of the programme\'s money, e.g. {USD: "7.1000"}.',
    )

    @field_validator("exchange_rates", mode="before")
    @classmethod
    def _rates_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: _decimal_text(rate) for key, rate in value.items()}
        return value

    @model_validator(mode="after")
    def _known_rates(self) -> Currency:
        for code, rate in self.exchange_rates.items():
            if code not in CURRENCY_EXPONENTS:
                raise ValueError(f"exchange_rates: {code!r} is not a known ISO 4217 currency code")
            if code == self.point_value.currency:
                raise ValueError(f"exchange_rates: {code} is the programme's own money")
            if Decimal(rate) <= 0 or -int(Decimal(rate).as_tuple().exponent) > 8:
                raise ValueError(
                    f"exchange_rates: the rate of {code} is more than 0 with at most 8 decimals"
                )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value


class FreeReturns(Strict):
    kind: Literal["free_returns"]


class PriorityService(Strict):
    kind: Literal["priority_service"]


class BirthdayGift(Strict):
    kind: Literal["birthday_gift"]


class MonthlyCoupons(Strict):
    kind: Literal["monthly_coupons"]
    count: int = Field(ge=1, le=1000, description="Coupons granted each month.")
    template: Code | None = Field(
        default=None,
        description="The coupon template issued: `tally jobs coupons` puts `count` of its codes "
        "into each member's wallet once a month. Without it the allowance is only shown.",
    )

    @model_serializer(mode="wrap")
    def _template_when_named(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if dumped.get("template") is None:
            dumped.pop("template", None)
        return dumped


AnyBenefit = FreeReturns | PriorityService | BirthdayGift | MonthlyCoupons
Benefit = Annotated[AnyBenefit, Field(discriminator="kind")]


def _unique_benefits(benefits: list[Any]) -> list[Any]:
    kinds = [benefit.kind for benefit in benefits]
    repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if repeated:
        raise ValueError(f"benefit {repeated[0]} is listed twice")
    return benefits


def stack_benefits(*sources: list[AnyBenefit]) -> list[AnyBenefit]:
    """The benefits of a tier and of paid plans together: each kind once, in first-seen order;
    monthly coupon allowances add up."""
    stacked: dict[str, AnyBenefit] = {}
    for benefits in sources:
        for benefit in benefits:
            held = stacked.get(benefit.kind)
            if held is None:
                stacked[benefit.kind] = benefit
            elif isinstance(benefit, MonthlyCoupons) and isinstance(held, MonthlyCoupons):
                stacked[benefit.kind] = MonthlyCoupons.model_construct(
                    kind="monthly_coupons",
                    count=held.count + benefit.count,
                    template=held.template if held.template == benefit.template else None,
                )
    return list(stacked.values())


def coupon_allowances(*sources: list[AnyBenefit]) -> dict[str, int]:
    """The coupons a month brings, by template: the ``monthly_coupons`` benefits that name a
    template, of a tier and of the paid plans in force, added up."""
    found: dict[str, int] = {}
    for benefits in sources:
        for benefit in benefits:
            if isinstance(benefit, MonthlyCoupons) and benefit.template is not None:
                found[benefit.template] = found.get(benefit.template, 0) + benefit.count
    return found


class Flags(Strict):
    """Flags later features read: the mall's tier-only items, the member pages' theme."""

    mall_exclusive: bool = Field(default=False, description="Sees the mall's tier-only items.")
    theme: str = Field(
        default="default",
        pattern=r"^[a-z][a-z0-9-]{0,31}$",
        json_schema_extra={"enum": list(THEMES)},  # a file is checked against it (consistency)
    )


class Tier(Strict):
    """One rung of the ladder."""

    code: Code
    names: Names
    threshold: int = Field(ge=0, description="Growth value needed; the first tier's is 0.")
    earn_multiplier: DecimalText = Field(description='Decimal string, e.g. "1.5" (1.5x).')
    benefits: list[Benefit] = Field(default_factory=list)
    flags: Flags = Field(default_factory=Flags)

    _multiplier = field_validator("earn_multiplier", mode="before")(_decimal_text)
    _benefits = field_validator("benefits")(_unique_benefits)

    @field_validator("earn_multiplier")
    @classmethod
    def _basis_points(cls, value: str) -> str:
        bp = Decimal(value) * 10_000
        if bp != bp.to_integral_value():
            raise ValueError("at most four decimals (basis points)")
        if not 0 < bp <= MAX_MULTIPLIER_BP:
            raise ValueError("must be above 0 and at most 100")
        return value

    @property
    def earn_multiplier_bp(self) -> int:
        """The multiplier in basis points: "1.5" → 15000."""
        return int(Decimal(self.earn_multiplier) * 10_000)


class TierModel(Strict):
    """How growth value is counted and when members move down."""

    kind: Literal["rolling_window", "calendar_year", "lifetime"]
    window_days: int | None = Field(
        default=None, ge=1, le=3650, description="Only for rolling_window: days counted."
    )
    grace_days: int = Field(default=0, ge=0, le=3650, description="Delay before a downgrade.")
    max_levels_down: int = Field(default=1, ge=1, le=100, description="Levels lost at once.")

    @model_validator(mode="after")
    def _window(self) -> TierModel:
        if self.kind == "rolling_window" and self.window_days is None:
            raise ValueError("window_days is required for a rolling_window")
        if self.kind != "rolling_window" and self.window_days is not None:
            raise ValueError(f"window_days applies only to rolling_window, not {self.kind}")
        return self


class Eligibility(Strict):
    min_growth: int = Field(default=0, ge=0, description="Growth value needed to subscribe.")
    min_tier: Code | None = Field(default=None, description="Code of the lowest tier allowed.")


class Plan(Strict):
    """A paid membership on top of the tiers."""

    code: Code
    names: Names
    price: Price
    term: str = Field(description="P1M, P3M, P1Y, P30D …", pattern=TERM_PATTERN.pattern)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    benefits: list[Benefit] = Field(default_factory=list)
    sellers: list[Code] = Field(
        default_factory=list,
        description="Partners that sell the plan and manage its memberships (subscribe, confirm "
        "payments, cancel, resume, refund); the operator's channels always may.",
    )

    _benefits = field_validator("benefits")(_unique_benefits)

    @property
    def term_parts(self) -> tuple[int, Literal["D", "M", "Y"]]:
        match = TERM_PATTERN.match(self.term)
        assert match is not None
        return int(match.group(1)), match.group(2)  # type: ignore[return-value]


class FamilyRules(Strict):
    """Family accounts: how big a family may be and the spend limit a new member starts with."""

    max_members: int = Field(default=6, ge=2, le=50, description="Members, the owner included.")
    default_monthly_limit: int = Field(
        default=5000,
        ge=0,
        le=1_000_000_000,
        description="Points a member may spend from a shared balance per month, unless the "
        "owner sets another limit.",
    )


class ExpiryReminders(Strict):
    """When to remind members of points about to expire."""

    days_before: list[Annotated[int, Field(ge=1, le=365)]] = Field(
        default_factory=list,
        max_length=10,
        description="Days before points expire to remind the member (e.g. [30, 7]): a "
        "`points.expiring` event for each member and expiry date at each of these distances, "
        "and the member pages warn from the largest. Empty: no reminders (the pages warn 30 "
        "days ahead).",
    )

    @field_validator("days_before")
    @classmethod
    def _distinct_days(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each reminder day is named once")
        return sorted(value, reverse=True)


class Reminders(Strict):
    """Reminders Tally sends members (through the outbox: partners' webhooks deliver them)."""

    expiry: ExpiryReminders = Field(default_factory=ExpiryReminders)


class PartnerSpec(Strict):
    """A partner of the programme; ``operator_channel`` marks the operator's own channels."""

    code: Code
    name: str = Field(min_length=1, max_length=200)
    operator_channel: bool = Field(
        default=False,
        description="One of the operator's own channels (its app, its service desk): may move "
        "points between members, mint member-page links, act in families on a member's behalf "
        "and use every identity namespace.",
    )


NAMESPACE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
NamespaceCode = Annotated[str, Field(pattern=NAMESPACE_PATTERN)]


class NamespaceSpec(Strict):
    """An identity namespace: owned by one partner (its own user ids) or shared by several."""

    code: NamespaceCode
    owner: Code | None = Field(
        default=None, description="The partner whose user ids these are (alone may use it)."
    )
    shared_with: list[Code] | Literal["all"] | None = Field(
        default=None,
        description='Partners that may use a shared namespace (phone, email), or "all".',
    )

    @model_validator(mode="after")
    def _owned_or_shared(self) -> NamespaceSpec:
        if (self.owner is None) == (self.shared_with is None):
            raise ValueError("a namespace has either an owner or shared_with, not both or neither")
        return self

    def usable_by(self, partner_code: str) -> bool:
        """Whether ``partner_code`` may enrol, link and look up members in this namespace."""
        if self.owner is not None:
            return self.owner == partner_code
        return self.shared_with == "all" or partner_code in (self.shared_with or [])


#: The namespaces of a programme that declares none: phone and email, shared by every partner.
DEFAULT_NAMESPACES = (
    NamespaceSpec(code="phone", shared_with="all"),
    NamespaceSpec(code="email", shared_with="all"),
)
StaffRoleName = Literal["admin", "ops", "finance", "support", "auditor"]
Points = Annotated[int, Field(ge=0, le=1_000_000_000)]


def _default_limits() -> dict[StaffRoleName, int]:
    return {"admin": 100_000, "ops": 10_000, "finance": 10_000, "support": 10_000}


def _default_approvers() -> list[StaffRoleName]:
    return ["admin"]


class StaffRules(Strict):
    """Guardrails on what operator staff may do alone."""

    adjustment_limits: dict[StaffRoleName, Points] = Field(
        default_factory=_default_limits,
        description="Points (either sign) a role may adjust without a second pair of eyes; "
        "above it an adjustment is a request another staff member must approve. A role not "
        "listed needs approval for every adjustment.",
    )
    approver_roles: list[StaffRoleName] = Field(
        default_factory=_default_approvers,
        min_length=1,
        description="Roles that may approve another staff member's adjustment request.",
    )
    max_adjustment: int = Field(
        default=10_000_000,
        ge=1,
        le=1_000_000_000,
        description="The largest adjustment that may be requested at all, approved or not.",
    )
    api_adjustment_limit: Points = Field(
        default=0,
        description="Points (either sign) one adjustment through the partner API (an operator "
        "channel's key with the admin scope) may carry without approval; above it the "
        "adjustment becomes a request a staff approver decides on. Default 0: every API "
        "adjustment needs approval.",
    )
    request_ttl_hours: int = Field(
        default=72,
        ge=1,
        le=720,
        description="Hours an adjustment request waits for a decision; after that it is "
        "expired and can no longer be approved or rejected.",
    )

    def limit_of(self, role: str) -> int:
        """Points ``role`` may adjust alone (0: every adjustment needs approval)."""
        return next((points for name, points in self.adjustment_limits.items() if name == role), 0)


class Programme(Strict):
    """The whole programme file."""

    model_config = ConfigDict(
        title="Tally programme",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    currency: Currency
    tiers: list[Tier] = Field(min_length=1, max_length=50)
    tier_model: TierModel
    plans: list[Plan] = Field(default_factory=list)
    family: FamilyRules = Field(default_factory=FamilyRules)
    partners: list[PartnerSpec] = Field(default_factory=list)
    namespaces: list[NamespaceSpec] = Field(
        default_factory=lambda: list(DEFAULT_NAMESPACES),
        description="Identity namespaces; phone and email shared by all when omitted.",
    )
    staff: StaffRules = Field(default_factory=StaffRules)
    reminders: Reminders = Field(default_factory=Reminders)
    event_types: list[EventTypeSpec] = Field(
        default_factory=list, description="Custom event types, and attributes of built-in ones."
    )
    aggregates: list[AggregateSpec] = Field(
        default_factory=list, description="Counts and sums of members' events rules may read."
    )
    badges: list[BadgeSpec] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)
    referral: Referral | None = Field(default=None, description="Members refer new members.")

    def tier(self, code: str) -> Tier | None:
        return next((tier for tier in self.tiers if tier.code == code), None)

    def namespace(self, code: str) -> NamespaceSpec | None:
        """The declared namespace ``code``, if any."""
        return next((spec for spec in self.namespaces if spec.code == code), None)

    def partner(self, code: str) -> PartnerSpec | None:
        """The programme's entry for partner ``code``, if any."""
        return next((spec for spec in self.partners if spec.code == code), None)

    def is_operator_channel(self, partner_code: str) -> bool:
        """Whether ``partner_code`` is one of the operator's own channels."""
        spec = self.partner(partner_code)
        return spec is not None and spec.operator_channel

    @property
    def zone(self) -> ZoneInfo:
        """The time zone the programme's days, months and years are counted in."""
        return ZoneInfo(self.currency.timezone)

    def plan(self, code: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.code == code), None)

    def dump(self) -> dict[str, Any]:
        """The normalised content: JSON-ready, keys as written in the file."""
        return self.model_dump(mode="json", by_alias=True)


def _duplicates(section: str, codes: list[str]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for index, code in enumerate(codes):
        if code in seen:
            problems.append(
                Problem(
                    (section, index, "code"),
                    f"{code} is already used by {format_path((section, seen[code]))}",
                )
            )
        seen.setdefault(code, index)
    return problems


def cross_check(programme: Programme) -> list[Problem]:
    """Checks across fields: unique codes, an increasing ladder from 0, known tiers."""
    problems = _duplicates("tiers", [tier.code for tier in programme.tiers])
    problems += _duplicates("plans", [plan.code for plan in programme.plans])
    problems += _duplicates("partners", [partner.code for partner in programme.partners])
    first = programme.tiers[0]
    if first.threshold != 0:
        problems.append(Problem(("tiers", 0, "threshold"), "the first tier's threshold must be 0"))
    for index in range(1, len(programme.tiers)):
        before, tier = programme.tiers[index - 1], programme.tiers[index]
        if tier.threshold <= before.threshold:
            problems.append(
                Problem(
                    ("tiers", index, "threshold"),
                    f"must be greater than tiers[{index - 1}].threshold ({before.threshold})",
                )
            )
    problems += _duplicates("namespaces", [spec.code for spec in programme.namespaces])
    problems += _unknown_partners(programme)
    codes = [tier.code for tier in programme.tiers]
    for index, plan in enumerate(programme.plans):
        wanted = plan.eligibility.min_tier
        if wanted is not None and wanted not in codes:
            problems.append(
                Problem(
                    ("plans", index, "eligibility", "min_tier"),
                    f"no tier {wanted}; tiers are {', '.join(codes)}",
                )
            )
    return problems


def _unknown_partners(programme: Programme) -> list[Problem]:
    """Partner codes named by namespaces and plans must be partners of the programme."""
    known = [partner.code for partner in programme.partners]

    def check(path: Path, code: str) -> list[Problem]:
        if code in known:
            return []
        listed = ", ".join(known) or "none"
        return [Problem(path, f"no partner {code} in partners (partners: {listed})")]

    problems: list[Problem] = []
    for index, spec in enumerate(programme.namespaces):
        if spec.owner is not None:
            problems += check(("namespaces", index, "owner"), spec.owner)
        if isinstance(spec.shared_with, list):
            for position, code in enumerate(spec.shared_with):
                problems += check(("namespaces", index, "shared_with", position), code)
    for index, plan in enumerate(programme.plans):
        for position, code in enumerate(plan.sellers):
            problems += check(("plans", index, "sellers", position), code)
    return problems
