"""Coupons, pure: a template's terms, the discount it gives a cart, why it does not apply, and
the codes members type at a checkout.

No SQLAlchemy, no FastAPI, no clock. Money is integer minor units of one currency; a percent is
in basis points (``1500`` is 15 %). Every discount is rounded down to the minor unit and never
exceeds the eligible subtotal (nor, for a percent, its cap).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: Characters a generated code is made of: upper-case letters and digits without the ones
#: read alike (0/O, 1/I/L): 31 characters, almost 5 bits each.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # 59 bits of chance: unguessable even with millions of codes issued
GROUP = 4  # shown as XXXX-XXXX-XXXX
BASIS_POINTS = 10_000  # 100 %
MAX_ISSUE = 100_000  # codes one request may generate or issue


class Kind(enum.StrEnum):
    """What a template takes off: an amount, or a percent of the eligible subtotal."""

    PERCENT = "percent"
    AMOUNT = "amount"


class CouponStatus(enum.StrEnum):
    """A generated code: usable (``issued``) or used (``redeemed``; a rollback makes it usable
    again)."""

    ISSUED = "issued"
    REDEEMED = "redeemed"


class RedemptionStatus(enum.StrEnum):
    REDEEMED = "redeemed"
    ROLLED_BACK = "rolled_back"


class Source(enum.StrEnum):
    """Who issued a code: an operator (API, console, CLI), a rule of the rule engine, a tier or
    plan's monthly allowance, a mall purchase."""

    OPERATOR = "operator"
    RULE = "rule"
    BENEFIT = "benefit"
    PURCHASE = "purchase"


class Reason(enum.StrEnum):
    """Why a coupon does not apply to a cart (stable: partners branch on them)."""

    UNKNOWN_CODE = "unknown_code"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MIN_SPEND_NOT_MET = "min_spend_not_met"
    NOT_APPLICABLE = "not_applicable"  # nothing in the cart is in the template's scope
    NOT_ACCEPTED_HERE = "not_accepted_here"  # the template is scoped to other partners
    LIMIT_REACHED = "limit_reached"  # the template's total or the member's limit is used up
    ALREADY_USED = "already_used"
    NOT_OWNER = "not_owner"  # the code is in another member's wallet (or none was named)
    MEMBER_REQUIRED = "member_required"  # a per-member limit needs the member at the checkout
    CURRENCY_MISMATCH = "currency_mismatch"


REASON_TEXT: dict[Reason, str] = {
    Reason.UNKNOWN_CODE: "No coupon has this code.",
    Reason.EXPIRED: "The coupon has expired.",
    Reason.NOT_YET_VALID: "The coupon is not valid yet.",
    Reason.MIN_SPEND_NOT_MET: "The eligible items do not reach the coupon's minimum spend.",
    Reason.NOT_APPLICABLE: "Nothing in the cart is covered by the coupon.",
    Reason.NOT_ACCEPTED_HERE: "The coupon is not accepted by this partner.",
    Reason.LIMIT_REACHED: "The coupon's limit of uses is reached.",
    Reason.ALREADY_USED: "The coupon code was already used.",
    Reason.NOT_OWNER: "The coupon belongs to another member.",
    Reason.MEMBER_REQUIRED: "This coupon is limited per member: name the member.",
    Reason.CURRENCY_MISMATCH: "The cart is in another currency than the coupon.",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """What a template covers; an empty tuple covers everything of that kind. An item is in
    scope when its SKU or its category is listed (or neither list is given)."""

    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()

    @property
    def covers_every_item(self) -> bool:
        return not self.categories and not self.skus

    def covers(self, line: Line) -> bool:
        """Whether a cart line is in scope."""
        if self.covers_every_item:
            return True
        return line.sku in self.skus or (
            line.category is not None and line.category in self.categories
        )

    def accepted_by(self, partner_code: str) -> bool:
        """Whether the partner ``partner_code`` accepts the coupon at its checkout."""
        return not self.partners or partner_code in self.partners


@dataclass(frozen=True, slots=True)
class Terms:
    """A template's terms, as the discount and its checks need them."""

    kind: Kind
    value: int  # minor units (amount) or basis points (percent)
    currency: str
    cap: int | None = None  # the most a percent takes off, minor units
    min_spend: int | None = None  # on the eligible subtotal, minor units
    scope: Scope = field(default_factory=Scope)
    total_limit: int | None = None
    per_member_limit: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # the first instant it is no longer valid


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    amount: int
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Cart:
    """A partner's cart: its total and, optionally, its lines (each a line total). Without
    lines, or for a template covering every item, the eligible subtotal is the total."""

    amount: int
    lines: tuple[Line, ...] = ()
    currency: str | None = None  # the programme's when not said


def eligible_subtotal(terms: Terms, cart: Cart) -> int:
    """What of the cart the template covers."""
    if terms.scope.covers_every_item:
        return cart.amount
    return sum(line.amount for line in cart.lines if terms.scope.covers(line))


def discount(terms: Terms, subtotal: int) -> int:
    """What the template takes off an eligible ``subtotal``: an amount, at most the subtotal;
    a percent rounded down to the minor unit, at most its cap."""
    if subtotal <= 0:
        return 0
    if terms.kind is Kind.AMOUNT:
        return min(terms.value, subtotal)
    off = subtotal * terms.value // BASIS_POINTS
    if terms.cap is not None:
        off = min(off, terms.cap)
    return min(off, subtotal)


def validity(terms: Terms, now: datetime) -> Reason | None:
    """``expired`` or ``not_yet_valid`` at ``now``, else ``None``."""
    if terms.valid_from is not None and now < terms.valid_from:
        return Reason.NOT_YET_VALID
    if terms.valid_until is not None and now >= terms.valid_until:
        return Reason.EXPIRED
    return None


@dataclass(frozen=True, slots=True)
class Quote:
    """A coupon applied to a cart: what it covers and takes off."""

    eligible: int
    discount: int
    currency: str


def quote(terms: Terms, cart: Cart, partner_code: str, now: datetime) -> Quote | Reason:
    """The discount the template gives ``cart`` at partner ``partner_code``'s checkout, or why
    it does not apply, checked in a fixed order: validity window, partner, currency, scope,
    minimum spend. (Use limits and the code's owner are the service's, which counts them.)"""
    window = validity(terms, now)
    if window is not None:
        return window
    if not terms.scope.accepted_by(partner_code):
        return Reason.NOT_ACCEPTED_HERE
    if cart.currency is not None and cart.currency != terms.currency:
        return Reason.CURRENCY_MISMATCH
    eligible = eligible_subtotal(terms, cart)
    if eligible <= 0:
        return Reason.NOT_APPLICABLE
    if terms.min_spend is not None and eligible < terms.min_spend:
        return Reason.MIN_SPEND_NOT_MET
    return Quote(eligible=eligible, discount=discount(terms, eligible), currency=terms.currency)


def cart_problem(cart: Cart) -> str | None:
    """What is wrong with a cart's figures, or ``None``: the lines may not add up to more
    than the total."""
    if sum(line.amount for line in cart.lines) > cart.amount:
        return "The cart's items add up to more than its amount."
    return None


# --- Codes --------------------------------------------------------------------------------------


def new_code() -> str:
    """A fresh random code (:data:`CODE_LENGTH` characters of :data:`ALPHABET`), unformatted."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def new_codes(count: int) -> list[str]:
    """``count`` distinct fresh codes."""
    found: set[str] = set()
    while len(found) < count:
        found.add(new_code())
    return list(found)


def normalise(code: str) -> str:
    """A code as typed (any case, with hyphens or spaces) as it is stored."""
    return "".join(code.split()).replace("-", "").upper()


def formatted(code: str) -> str:
    """A generated code for people: ``ABCD-EFGH-JKMN`` (a template's shared code as is)."""
    if len(code) != CODE_LENGTH or any(char not in ALPHABET for char in code):
        return code
    return "-".join(code[start : start + GROUP] for start in range(0, CODE_LENGTH, GROUP))


def wallet_state(status: CouponStatus, terms: Terms, now: datetime) -> str:
    """How a member's wallet shows a code at ``now``: ``used``, ``expired``, ``upcoming`` or
    ``valid``."""
    if status is CouponStatus.REDEEMED:
        return "used"
    window = validity(terms, now)
    if window is Reason.EXPIRED:
        return "expired"
    if window is Reason.NOT_YET_VALID:
        return "upcoming"
    return "valid"


def month_of(moment: datetime) -> str:
    """``YYYY-MM`` of a moment, in the zone it is given in (the caller converts it to the
    programme's zone first)."""
    return f"{moment.year:04d}-{moment.month:02d}"


def allowance_keys(member_id: int, template: str, month: str, count: int) -> Sequence[str]:
    """The grant keys of a member's monthly allowance of a template: one per coupon, so that
    a second run of the month's job issues nothing more."""
    return [f"monthly:{month}:{template}:{member_id}:{index}" for index in range(count)]
