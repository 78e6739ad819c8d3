"""Offers ranked for each member (pure): which of the mall's items a member may buy now, in
what order to show them, and why each is shown.

An item is offered only when the member could place an order for it now: it is in its
publishing window (and its flash sale's, when it has one), in stock, with a free slot for a
booking, open to the member's tier or paid plans (an exclusive item to the tiers flagged
``mall_exclusive``), and the member has not reached its per-member limit. Among those, a score
adds up what the member's own redemptions say (the categories and items they redeemed,
recency-weighted), what similar members' redemptions say (item-item co-occurrence, see
:mod:`tally.offers.similarity`), and popularity in the member's tier and overall; a member
without redemptions is ranked by popularity in their tier, then overall. Items the member can
afford come first, then those within a third of their price ("N points to go"), then the rest.
Every offer carries :class:`Reason` codes with parameters that pages word in each language.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from tally.mall import domain as mall
from tally.mall.domain import Eligibility, ItemKind, LimitPeriod, Pricing

#: A redemption's weight halves every this many days.
HALF_LIFE_DAYS = 90.0
#: An item is "near" when what the member lacks is at most a third of its price.
NEAR_SHARE = 3
#: How much each signal counts (each signal is scaled to 0..1 first).
W_SIMILAR = 3.0
W_CATEGORY = 2.0
W_REPEAT = 1.0
W_TIER_POPULAR = 0.6
W_POPULAR = 0.3
W_PERK = 0.3
#: A member without redemptions: popularity in their tier, then overall.
W_NEW_TIER = 0.7
W_NEW_OVERALL = 0.3
#: A signal below this share of its full weight is not named as a reason.
REASON_FLOOR = 0.15
#: At most this many reasons of the scored signals are named for an item.
MAX_SIGNAL_REASONS = 2


class ReasonCode(enum.StrEnum):
    """Why an item is shown; the parameters each code carries are listed beside it."""

    SIMILAR_MEMBERS = "similar_members"  # item: the code of a redeemed item it goes with
    YOU_REDEEMED_CATEGORY = "you_redeemed_category"  # category
    YOU_REDEEMED_ITEM = "you_redeemed_item"  # (none)
    POPULAR_IN_TIER = "popular_in_tier"  # tier
    POPULAR = "popular"  # (none)
    NEW_MEMBER_POPULAR = "new_member_popular"  # tier, when the tier's popularity decided
    AFFORDABLE = "affordable"  # (none)
    POINTS_TO_GO = "points_to_go"  # points: how many the member lacks
    EXCLUSIVE = "exclusive"  # tier: the member's tier that sees it
    PLAN_MEMBER = "plan_member"  # plan: the member's paid plan that opens it
    TIER_PRICE = "tier_price"  # tier, points: the member's tier's price
    FLASH_SALE = "flash_sale"  # ends_at: ISO-8601
    IN_THE_MALL = "in_the_mall"  # (none): nothing else to say


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason an item is shown: a code and its parameters."""

    code: ReasonCode
    params: Mapping[str, str | int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``code``, or ``code:value`` of its first parameter (``you_redeemed_category:books``)."""
        if not self.params:
            return self.code.value
        return f"{self.code.value}:{next(iter(self.params.values()))}"


class Affordability(enum.IntEnum):
    """The order buckets of offers: affordable first."""

    AFFORDABLE = 0
    NEAR = 1
    FAR = 2


@dataclass(frozen=True, slots=True)
class Offerable:
    """An active item as the ranking sees it (``stock``/``sale_stock`` ``None``: unlimited;
    ``has_free_slot``: a booking has a slot to come with room)."""

    item_id: int
    code: str
    kind: ItemKind
    names: Mapping[str, str]
    categories: tuple[str, ...]
    pricing: Pricing
    eligibility: Eligibility
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    stock: int | None = None
    sale_stock: int | None = None
    limit_count: int | None = None
    limit_period: LimitPeriod | None = None
    has_free_slot: bool = True
    images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Past:
    """One of the member's redemptions: the item, its categories, when."""

    item_id: int
    code: str
    categories: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class Shopper:
    """The member: tier, paid plans in force, spendable points, redemptions, and the units
    bought per ``(item id, limit window)`` (the mall's limit counters)."""

    member_id: int
    tier_code: str
    tier_is_exclusive: bool
    plans: frozenset[str]
    balance: int
    history: tuple[Past, ...] = ()
    bought: Mapping[tuple[int, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Signals:
    """What all members' redemptions say: each item's most similar items (best first), the
    members who redeemed each item, overall and per tier."""

    neighbours: Mapping[int, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    popularity: Mapping[int, int] = field(default_factory=dict)
    tier_popularity: Mapping[str, Mapping[int, int]] = field(default_factory=dict)


EMPTY = Signals()


@dataclass(frozen=True, slots=True)
class Offer:
    """An item offered to the member: its price for them, score, bucket and reasons."""

    item: Offerable
    points: int
    score: float
    affordability: Affordability
    points_to_go: int
    reasons: tuple[Reason, ...]


# --- What may be offered ----------------------------------------------------------------------


def price_for(item: Offerable, shopper: Shopper, now: datetime) -> tuple[int, bool]:
    """``(points of one unit for the member, priced by the open flash sale)``."""
    return mall.unit_points(item.pricing, shopper.tier_code, now)


def unavailability(item: Offerable, shopper: Shopper, now: datetime, zone: ZoneInfo) -> str | None:
    """Why the member could not order ``item`` now, or ``None`` when they could (the checks of
    the place-order flow that do not depend on the quantity or the balance)."""
    if not mall.is_open(item.starts_at, item.ends_at, now):
        return "not in its window"
    sale = item.pricing.sale
    on_sale = sale is not None and mall.is_open(sale.starts_at, sale.ends_at, now)
    if sale is not None and not on_sale:
        return "sells in its flash sale only"
    stock = item.sale_stock if on_sale else item.stock
    if stock is not None and stock < 1:
        return "sold out"
    if item.kind is ItemKind.BOOKING and not item.has_free_slot:
        return "no slot with room"
    reason = mall.ineligibility(
        item.eligibility, shopper.tier_code, shopper.tier_is_exclusive, shopper.plans
    )
    if reason is not None:
        return reason
    if on_sale and sale is not None and sale.per_member_limit is not None:
        window, limit = mall.sale_window(sale.starts_at), sale.per_member_limit
    elif item.limit_count is not None:
        period = item.limit_period or LimitPeriod.TOTAL
        window, limit = mall.limit_window(period, now, zone), item.limit_count
    else:
        return None
    if shopper.bought.get((item.item_id, window), 0) >= limit:
        return "limit reached"
    return None


def affordability(points: int, balance: int) -> tuple[Affordability, int]:
    """The bucket of an item of ``points`` for a member holding ``balance``, and the points
    the member lacks (0 when affordable)."""
    lack = max(points - balance, 0)
    if lack == 0:
        return Affordability.AFFORDABLE, 0
    if lack * NEAR_SHARE <= points:
        return Affordability.NEAR, lack
    return Affordability.FAR, lack


# --- Scores -----------------------------------------------------------------------------------


def recency_weight(at: datetime, now: datetime) -> float:
    """A redemption's weight: 1 now, halving every :data:`HALF_LIFE_DAYS` (never above 1)."""
    days = max((now - at).total_seconds(), 0.0) / 86_400
    return float(0.5 ** (days / HALF_LIFE_DAYS))


@dataclass(frozen=True, slots=True)
class _Taste:
    """The member's recency-weighted redemptions, as shares of their total weight."""

    categories: dict[str, float]
    items: dict[int, float]
    codes: dict[int, str]

    @property
    def is_empty(self) -> bool:
        return not self.items


def _taste(history: Iterable[Past], now: datetime) -> _Taste:
    categories: dict[str, float] = defaultdict(float)
    items: dict[int, float] = defaultdict(float)
    codes: dict[int, str] = {}
    total = 0.0
    for past in sorted(history, key=lambda p: (p.at, p.item_id)):
        weight = recency_weight(past.at, now)
        total += weight
        items[past.item_id] += weight
        codes[past.item_id] = past.code
        for category in past.categories:
            categories[category] += weight / len(past.categories)
    if total <= 0:
        return _Taste({}, {}, {})
    return _Taste(
        {key: value / total for key, value in categories.items()},
        {key: value / total for key, value in items.items()},
        codes,
    )


def _similar(taste: _Taste, signals: Signals) -> dict[int, tuple[float, int]]:
    """Each item's co-occurrence score with the member's redeemed items, and the redeemed item
    that adds most to it."""
    found: dict[int, list[float | int]] = {}
    for past_id in sorted(taste.items):
        share = taste.items[past_id]
        for other, similarity in signals.neighbours.get(past_id, ()):
            if other == past_id:
                continue
            add = share * similarity
            entry = found.setdefault(other, [0.0, 0.0, past_id])
            entry[0] += add
            if add > entry[1]:
                entry[1], entry[2] = add, past_id
    return {key: (float(value[0]), int(value[2])) for key, value in found.items()}


def _log_scale(counts: Mapping[int, int]) -> float:
    """What scales popularity counts to 0..1: the log of the largest."""
    return math.log1p(max(counts.values(), default=0))


def _scaled(counts: Mapping[int, int], scale: float, item_id: int) -> float:
    if scale <= 0:
        return 0.0
    return math.log1p(counts.get(item_id, 0)) / scale


def _perk(item: Offerable, shopper: Shopper, points: int, on_sale: bool) -> list[Reason]:
    """The reasons the member's standing gives: an exclusive item, a plan's item, a tier
    price, an open flash sale."""
    reasons: list[Reason] = []
    rule = item.eligibility
    if rule.exclusive and shopper.tier_is_exclusive:
        reasons.append(Reason(ReasonCode.EXCLUSIVE, {"tier": shopper.tier_code}))
    plans = sorted(shopper.plans & set(rule.plans))
    if plans and shopper.tier_code not in rule.tiers:
        reasons.append(Reason(ReasonCode.PLAN_MEMBER, {"plan": plans[0]}))
    if on_sale and item.pricing.sale is not None:
        reasons.append(
            Reason(ReasonCode.FLASH_SALE, {"ends_at": item.pricing.sale.ends_at.isoformat()})
        )
    elif points < item.pricing.points:
        reasons.append(Reason(ReasonCode.TIER_PRICE, {"tier": shopper.tier_code, "points": points}))
    return reasons


#: The weights of a returning member's signals, in the order :func:`_signal_reason` names them.
_WEIGHTS = (W_SIMILAR, W_CATEGORY, W_REPEAT, W_TIER_POPULAR, W_POPULAR)


def _signal_reason(index: int, shopper: Shopper, category: str, because: str | None) -> Reason:
    """The reason of a returning member's signal ``index`` (the order of :data:`_WEIGHTS`)."""
    if index == 0:
        return Reason(ReasonCode.SIMILAR_MEMBERS, {"item": because or ""})
    if index == 1:
        return Reason(ReasonCode.YOU_REDEEMED_CATEGORY, {"category": category})
    if index == 2:
        return Reason(ReasonCode.YOU_REDEEMED_ITEM)
    if index == 3:
        return Reason(ReasonCode.POPULAR_IN_TIER, {"tier": shopper.tier_code})
    return Reason(ReasonCode.POPULAR)


def rank(
    items: Sequence[Offerable],
    shopper: Shopper,
    signals: Signals,
    now: datetime,
    zone: ZoneInfo,
    limit: int | None = 10,
    *,
    use_balance: bool = True,
) -> list[Offer]:
    """The items the member may order now, best first (affordable, then near, then the rest;
    by score within each; by code on a tie), at most ``limit`` (``None``: all).

    ``use_balance=False`` ranks by score alone, naming no affordability reason (the offline
    evaluation's ablation)."""
    taste = _taste(shopper.history, now)
    similar = _similar(taste, signals)
    top_similar = max((value for value, _ in similar.values()), default=0.0)
    tier_counts = signals.tier_popularity.get(shopper.tier_code, {})
    tier_scale, all_scale = _log_scale(tier_counts), _log_scale(signals.popularity)
    offers: list[Offer] = []
    for item in items:
        if unavailability(item, shopper, now, zone) is not None:
            continue
        points, on_sale = price_for(item, shopper, now)
        tier_popular = _scaled(tier_counts, tier_scale, item.item_id)
        popular = _scaled(signals.popularity, all_scale, item.item_id)
        perks = _perk(item, shopper, points, on_sale)
        signal_reasons: list[tuple[float, Reason]] = []
        if taste.is_empty:
            score = W_NEW_TIER * tier_popular + W_NEW_OVERALL * popular
            params: dict[str, str | int] = {"tier": shopper.tier_code} if tier_popular > 0 else {}
            if score > 0:
                signal_reasons.append((score, Reason(ReasonCode.NEW_MEMBER_POPULAR, params)))
        else:
            sim_value, because = similar.get(item.item_id, (0.0, 0))
            sim = sim_value / top_similar if top_similar > 0 else 0.0
            category, affinity = max(
                ((c, taste.categories.get(c, 0.0)) for c in item.categories),
                key=lambda pair: (pair[1], pair[0]),
                default=("", 0.0),
            )
            repeat = min(taste.items.get(item.item_id, 0.0) * 2, 1.0)
            values = (sim, affinity, repeat, tier_popular, popular)
            score = sum(weight * value for weight, value in zip(_WEIGHTS, values, strict=True))
            signal_reasons = [
                (weight * value, _signal_reason(index, shopper, category, taste.codes.get(because)))
                for index, (weight, value) in enumerate(zip(_WEIGHTS, values, strict=True))
                if value >= REASON_FLOOR
            ]
        score += W_PERK * len(perks)
        signal_reasons.sort(key=lambda pair: (-pair[0], pair[1].code.value))
        reasons = [reason for _, reason in signal_reasons[:MAX_SIGNAL_REASONS]] + perks
        bucket, lack = affordability(points, shopper.balance)
        if use_balance and bucket is Affordability.AFFORDABLE:
            reasons.append(Reason(ReasonCode.AFFORDABLE))
        elif use_balance and bucket is Affordability.NEAR:
            reasons.append(Reason(ReasonCode.POINTS_TO_GO, {"points": lack}))
        if not reasons:
            reasons.append(Reason(ReasonCode.IN_THE_MALL))
        offers.append(Offer(item, points, round(score, 6), bucket, lack, tuple(reasons)))
    offers.sort(
        key=lambda offer: (
            offer.affordability if use_balance else 0,
            -offer.score,
            offer.item.code,
        )
    )
    return offers if limit is None else offers[:limit]
