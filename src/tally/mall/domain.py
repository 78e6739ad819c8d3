"""The rewards mall's rules: item kinds, prices, limits and the order state machine (pure).

An order has two statuses that move separately: its *payment* (points held and captured, the
cash part confirmed, refunds) and its *fulfilment* (shipping, codes, partner confirmation).
Every change is one :class:`Action`, and :data:`TRANSITIONS` is the whole table of what each
action may start from and where it leads; nothing else changes an order's statuses.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tally.errors import InvalidTransition, OrderRefunded, ValidationFailed

#: The default time to ship (or have a partner confirm) an order from its payment (the issue's
#: "48 hours").
DEFAULT_SHIP_WITHIN = "PT48H"
MAX_SHIP_WITHIN_SECONDS = 90 * 24 * 3600
#: How long a points-plus-cash order waits for its cash payment before it lapses.
PAYMENT_WINDOW_SECONDS = 30 * 60
#: How long the hold of a points-only order lives before it is captured in the same transaction.
IMMEDIATE_HOLD_SECONDS = 60
MAX_QUANTITY = 99


class ItemKind(enum.StrEnum):
    """What an item is, which decides how its orders are fulfilled."""

    PHYSICAL = "physical"  # shipped to an address, then delivered
    DIGITAL_CODE = "digital_code"  # a code from the item's pool, delivered on payment
    COUPON = "coupon"  # issued into the member's coupon wallet (the coupons domain)
    PARTNER_BENEFIT = "partner_benefit"  # the supplier fulfils and confirms
    BOOKING = "booking"  # a time slot with a capacity
    TICKET = "ticket"  # a ticket code issued on payment
    DONATION = "donation"  # complete once paid
    PLAN = "plan"  # a programme plan: a membership of it starts on payment


#: Kinds complete (delivered) as soon as they are paid.
DELIVERED_ON_PAYMENT = frozenset(
    {ItemKind.DIGITAL_CODE, ItemKind.BOOKING, ItemKind.TICKET, ItemKind.DONATION, ItemKind.PLAN}
)
#: Kinds the 48-hour sweep watches: someone must still act after the payment.
AWAITING_FULFILMENT = frozenset({ItemKind.PHYSICAL, ItemKind.PARTNER_BENEFIT})


class LimitPeriod(enum.StrEnum):
    """The period a per-member limit counts over, in the programme's time zone."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    TOTAL = "total"


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # points held, the cash part not confirmed yet
    PAID = "paid"
    PART_REFUNDED = "part_refunded"
    REFUNDED = "refunded"
    LAPSED = "lapsed"  # the cash part never came: points and stock went back
    CANCELLED = "cancelled"  # cancelled before payment


class FulfilmentStatus(enum.StrEnum):
    UNFULFILLED = "unfulfilled"  # nothing done yet (waiting for payment, or to be shipped)
    REQUESTED = "requested"  # a partner benefit asked of its supplier
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"  # never to be fulfilled


class Action(enum.StrEnum):
    """Everything that can happen to an order (the order event's ``kind``, but ``placed``)."""

    PAY = "paid"
    LAPSE = "lapsed"
    CANCEL = "cancelled"
    REQUEST = "fulfilment_requested"
    SHIP = "shipped"
    DELIVER = "delivered"  # a shipped order arrived
    CONFIRM = "confirmed"  # the supplier fulfilled a partner benefit
    COMPLETE = "completed"  # delivered on payment (a code, a ticket, a booking, a donation)
    REFUND = "refunded"
    PART_REFUND = "part_refunded"
    AUTO_REFUND = "auto_refunded"


@dataclass(frozen=True, slots=True)
class State:
    payment: PaymentStatus
    fulfilment: FulfilmentStatus


P, F = PaymentStatus, FulfilmentStatus
_OPEN_PAID = (P.PAID, P.PART_REFUNDED)
_NOT_STARTED = (F.UNFULFILLED, F.REQUESTED)

#: ``action → [(payment statuses it may start from, fulfilment statuses it may start from,
#: the payment status after (None: unchanged), the fulfilment status after (None: unchanged))]``,
#: the first row matching the order's state applying.
Row = tuple[
    tuple[PaymentStatus, ...],
    tuple[FulfilmentStatus, ...],
    PaymentStatus | None,
    FulfilmentStatus | None,
]
TRANSITIONS: dict[Action, tuple[Row, ...]] = {
    Action.PAY: (((P.PENDING,), (F.UNFULFILLED,), P.PAID, None),),
    Action.LAPSE: (((P.PENDING,), (F.UNFULFILLED,), P.LAPSED, F.CANCELLED),),
    Action.CANCEL: (
        ((P.PENDING,), (F.UNFULFILLED,), P.CANCELLED, F.CANCELLED),
        (_OPEN_PAID, _NOT_STARTED, P.REFUNDED, F.CANCELLED),
    ),
    Action.REQUEST: ((_OPEN_PAID, (F.UNFULFILLED,), None, F.REQUESTED),),
    Action.SHIP: ((_OPEN_PAID, (F.UNFULFILLED,), None, F.SHIPPED),),
    Action.DELIVER: ((_OPEN_PAID, (F.SHIPPED,), None, F.DELIVERED),),
    Action.CONFIRM: ((_OPEN_PAID, (F.REQUESTED,), None, F.DELIVERED),),
    Action.COMPLETE: (((P.PAID,), (F.UNFULFILLED,), None, F.DELIVERED),),
    Action.REFUND: (
        (_OPEN_PAID, _NOT_STARTED, P.REFUNDED, F.CANCELLED),
        (_OPEN_PAID, (F.SHIPPED, F.DELIVERED), P.REFUNDED, None),
    ),
    Action.PART_REFUND: ((_OPEN_PAID, tuple(F), P.PART_REFUNDED, None),),
    Action.AUTO_REFUND: ((_OPEN_PAID, _NOT_STARTED, P.REFUNDED, F.CANCELLED),),
}
#: Payment statuses no action leaves.
FINAL_PAYMENTS = frozenset({P.REFUNDED, P.LAPSED, P.CANCELLED})


def allowed(state: State, action: Action) -> State | None:
    """The state ``action`` leads to from ``state``, or ``None`` when the table forbids it."""
    for payments, fulfilments, payment, fulfilment in TRANSITIONS[action]:
        if state.payment in payments and state.fulfilment in fulfilments:
            return State(payment or state.payment, fulfilment or state.fulfilment)
    return None


def transition(state: State, action: Action) -> State:
    """The state after ``action``; refused ``order_refunded`` when the order's points were given
    back already, else ``invalid_transition`` naming both statuses."""
    after = allowed(state, action)
    if after is not None:
        return after
    extra = {"payment_status": state.payment.value, "fulfilment_status": state.fulfilment.value}
    if state.payment is P.REFUNDED:
        raise OrderRefunded("The order was refunded; it cannot be changed any more.", **extra)
    raise InvalidTransition(
        f"An order {state.payment.value} and {state.fulfilment.value} cannot be "
        f"{action.value.replace('_', ' ')}.",
        action=action.value,
        **extra,
    )


def summary(state: State) -> str:
    """One word for people and filters: ``awaiting_payment``, ``processing``, ``shipped``,
    ``completed``, ``refunded``, ``lapsed`` or ``cancelled``."""
    if state.payment is P.PENDING:
        return "awaiting_payment"
    if state.payment in (P.LAPSED, P.CANCELLED):
        return state.payment.value
    if state.payment is P.REFUNDED:
        return "refunded"
    if state.fulfilment is F.DELIVERED:
        return "completed"
    if state.fulfilment is F.SHIPPED:
        return "shipped"
    return "processing"


_PAID_FULFILMENTS = (F.UNFULFILLED, F.REQUESTED, F.CANCELLED)
#: For each word of :func:`summary`, the payment and fulfilment statuses it stands for (what a
#: filter on it looks for).
SUMMARY_STATUSES: dict[str, tuple[tuple[PaymentStatus, ...], tuple[FulfilmentStatus, ...]]] = {
    "awaiting_payment": ((P.PENDING,), tuple(F)),
    "processing": (_OPEN_PAID, _PAID_FULFILMENTS),
    "shipped": (_OPEN_PAID, (F.SHIPPED,)),
    "completed": (_OPEN_PAID, (F.DELIVERED,)),
    "refunded": ((P.REFUNDED,), tuple(F)),
    "lapsed": ((P.LAPSED,), tuple(F)),
    "cancelled": ((P.CANCELLED,), tuple(F)),
}


def summary_statuses(word: str) -> tuple[tuple[PaymentStatus, ...], tuple[FulfilmentStatus, ...]]:
    """The statuses :func:`summary` calls ``word``; ``validation_error`` for another word."""
    found = SUMMARY_STATUSES.get(word)
    if found is None:
        raise ValidationFailed(
            f"status must be one of {', '.join(SUMMARY_STATUSES)}.", field="status"
        )
    return found


# --- Limits and windows -----------------------------------------------------------------------


def limit_window(period: LimitPeriod, now: datetime, zone: ZoneInfo) -> str:
    """The key of the period ``now`` falls in, in the programme's zone: ``d:2026-12-04``,
    ``w:2026-W49``, ``m:2026-12``, ``y:2026`` or ``total``."""
    local = now.astimezone(zone)
    if period is LimitPeriod.DAY:
        return f"d:{local.date().isoformat()}"
    if period is LimitPeriod.WEEK:
        year, week, _day = local.isocalendar()
        return f"w:{year}-W{week:02d}"
    if period is LimitPeriod.MONTH:
        return f"m:{local.year}-{local.month:02d}"
    if period is LimitPeriod.YEAR:
        return f"y:{local.year}"
    return "total"


def sale_window(starts_at: datetime) -> str:
    """The limit window of the sale starting at ``starts_at`` (each sale counts afresh)."""
    return f"sale:{int(starts_at.timestamp())}"


def is_open(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> bool:
    """Whether ``now`` is in ``[starts_at, ends_at)`` (an open end is no bound)."""
    return (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)


# --- Prices -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sale:
    """An item's flash sale: its own window, price, stock and per-member limit."""

    starts_at: datetime
    ends_at: datetime
    points: int
    per_member_limit: int | None


@dataclass(frozen=True, slots=True)
class Pricing:
    """What decides an item's price for a member."""

    points: int
    tier_points: dict[str, int]
    sale: Sale | None


def unit_points(pricing: Pricing, tier_code: str, now: datetime) -> tuple[int, bool]:
    """``(points of one unit, priced by the sale)``: the sale price during the sale, else the
    member's tier price when the item has one, else the item's price (the lowest applies when a
    tier price is above the base price: a tier never pays more)."""
    if pricing.sale is not None and is_open(pricing.sale.starts_at, pricing.sale.ends_at, now):
        return pricing.sale.points, True
    tier = pricing.tier_points.get(tier_code)
    return (pricing.points if tier is None else min(tier, pricing.points)), False


# --- Eligibility ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Who may buy an item: any tier of ``tiers`` or any plan of ``plans`` (none: everyone);
    an ``exclusive`` item only members of a tier flagged ``mall_exclusive``."""

    tiers: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    exclusive: bool = False


def ineligibility(
    rule: Eligibility, tier_code: str, tier_is_exclusive: bool, plans: frozenset[str]
) -> str | None:
    """Why a member of tier ``tier_code`` with paid ``plans`` may not buy, or ``None``."""
    if rule.exclusive and not tier_is_exclusive:
        return "the item is reserved to the top tiers"
    if not rule.tiers and not rule.plans:
        return None
    if tier_code in rule.tiers or plans & set(rule.plans):
        return None
    wanted = [*(f"tier {code}" for code in rule.tiers), *(f"plan {code}" for code in rule.plans)]
    return "the item is for members of " + " or ".join(wanted)


# --- Durations --------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^P(?:(?P<days>\d{1,3})D)?(?:T(?:(?P<hours>\d{1,4})H)?(?:(?P<minutes>\d{1,5})M)?"
    r"(?:(?P<seconds>\d{1,7})S)?)?$"
)


def parse_duration(text: str, field: str = "ship_within") -> timedelta:
    """An ISO-8601 duration of days, hours, minutes and seconds (``PT48H``, ``P2D``,
    ``P1DT12H``) as a :class:`timedelta` from 1 second to 90 days; anything else is a
    ``validation_error`` on ``field``."""
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValidationFailed(
            f"{field} must be an ISO-8601 duration such as PT48H or P2D.", field=field
        )
    parts = {key: int(value) for key, value in match.groupdict().items() if value}
    value = timedelta(**parts)
    if not timedelta(seconds=1) <= value <= timedelta(seconds=MAX_SHIP_WITHIN_SECONDS):
        raise ValidationFailed(f"{field} must be from 1 second to 90 days.", field=field)
    return value


def image_problem(url: str) -> str | None:
    """Why ``url`` is no image address (an https URL or a path under ``/static/``), or None."""
    if re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\"'<>]*)?", url):
        return None
    if re.fullmatch(r"/static/[A-Za-z0-9._/-]+", url) and ".." not in url:
        return None
    return "an image is an https URL or a path under /static/"


# --- Refunds ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refund:
    """What one refund gives back: ``points`` and ``quantity`` (restocked), and whether it
    closes the order's payment (all of it given back)."""

    points: int
    quantity: int
    is_full: bool


def plan_refund(
    total_points: int,
    refunded_points: int,
    quantity: int,
    refunded_quantity: int,
    points: int | None,
    units: int | None,
) -> Refund:
    """A refund of ``units`` of the order (their share of the points, restocked) or of
    ``points`` (nothing restocked, unless they are all that is left), or, with neither, of
    all that is left; refused (``validation_error``) beyond what is left."""
    points_left = total_points - refunded_points
    units_left = quantity - refunded_quantity
    if points is not None and units is not None:
        raise ValidationFailed("Refund either a quantity or points, not both.", field="quantity")
    if units is not None:
        if not 1 <= units <= units_left:
            raise ValidationFailed(
                f"quantity must be from 1 to the {units_left} not refunded.", field="quantity"
            )
        share = points_left if units == units_left else total_points * units // quantity
        share = min(share, points_left)
        return Refund(share, units, units == units_left)
    if points is not None:
        if not 1 <= points <= points_left:
            raise ValidationFailed(
                f"points must be from 1 to the {points_left} not refunded.", field="points"
            )
        full = points == points_left  # all the points back: the order is refunded, restocked
        return Refund(points, units_left if full else 0, full)
    return Refund(points_left, units_left, True)
