"""The pure ranking of offers: only items a member may order now, affordable first, each with
its reasons, in a deterministic order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tally.mall.domain import Eligibility, ItemKind, LimitPeriod, Pricing, Sale
from tally.offers.domain import (
    Affordability,
    Offerable,
    Past,
    ReasonCode,
    Shopper,
    Signals,
    affordability,
    rank,
    recency_weight,
    unavailability,
)

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
TIERS = ("BRONZE", "GOLD", "DIAMOND")
PLANS = ("VIP88", "CLUB")


def item(item_id: int, code: str | None = None, points: int = 100, **extra: object) -> Offerable:
    values: dict[str, object] = {
        "item_id": item_id,
        "code": code or f"I{item_id:03d}",
        "kind": ItemKind.DONATION,
        "names": {"zh-CN": f"商品{item_id}", "en": f"Item {item_id}"},
        "categories": ("books",),
        "pricing": Pricing(points, {}, None),
        "eligibility": Eligibility(),
        **extra,
    }
    return Offerable(**values)  # type: ignore[arg-type]


def shopper(balance: int = 1_000, tier: str = "BRONZE", **extra: object) -> Shopper:
    values: dict[str, object] = {
        "member_id": 1,
        "tier_code": tier,
        "tier_is_exclusive": tier == "DIAMOND",
        "plans": frozenset(),
        "balance": balance,
        **extra,
    }
    return Shopper(**values)  # type: ignore[arg-type]


def past(item_id: int, days_ago: float, categories: tuple[str, ...] = ("books",)) -> Past:
    return Past(item_id, f"I{item_id:03d}", categories, NOW - timedelta(days=days_ago))


def keys(offer: object) -> list[str]:
    return [reason.key for reason in offer.reasons]  # type: ignore[attr-defined]


# --- Properties -------------------------------------------------------------------------------

windows = st.sampled_from(
    [
        (None, None),
        (NOW - timedelta(days=1), None),
        (None, NOW + timedelta(days=1)),
        (NOW + timedelta(hours=1), None),  # not yet
        (None, NOW),  # just ended (the end is open)
    ]
)
sales = st.sampled_from(
    [
        None,
        Sale(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 50, 1),  # open
        Sale(NOW + timedelta(hours=1), NOW + timedelta(hours=2), 50, None),  # to come
    ]
)


@st.composite
def catalogs(draw: st.DrawFn) -> list[Offerable]:
    count = draw(st.integers(0, 12))
    found = []
    for item_id in range(1, count + 1):
        starts_at, ends_at = draw(windows)
        tiers = tuple(draw(st.lists(st.sampled_from(TIERS), max_size=2, unique=True)))
        plans = tuple(draw(st.lists(st.sampled_from(PLANS), max_size=1, unique=True)))
        found.append(
            item(
                item_id,
                points=draw(st.integers(0, 3_000)),
                categories=tuple(
                    draw(st.lists(st.sampled_from(["books", "travel", "food"]), max_size=2))
                ),
                pricing=Pricing(
                    draw(st.integers(0, 3_000)),
                    draw(st.dictionaries(st.sampled_from(TIERS), st.integers(0, 3_000))),
                    draw(sales),
                ),
                eligibility=Eligibility(tiers, plans, draw(st.booleans())),
                starts_at=starts_at,
                ends_at=ends_at,
                stock=draw(st.none() | st.integers(0, 3)),
                sale_stock=draw(st.none() | st.integers(0, 3)),
                limit_count=draw(st.none() | st.integers(1, 2)),
                limit_period=draw(st.sampled_from([None, *LimitPeriod])),
                kind=draw(st.sampled_from([ItemKind.DONATION, ItemKind.BOOKING])),
                has_free_slot=draw(st.booleans()),
            )
        )
    return found


@st.composite
def shoppers(draw: st.DrawFn, items: list[Offerable]) -> Shopper:
    ids = [offerable.item_id for offerable in items] or [99]
    tier = draw(st.sampled_from(TIERS))
    history = tuple(
        past(draw(st.sampled_from(ids)), draw(st.floats(0, 800)), ("books",))
        for _ in range(draw(st.integers(0, 6)))
    )
    bought = {
        (draw(st.sampled_from(ids)), "total"): draw(st.integers(0, 3))
        for _ in range(draw(st.integers(0, 3)))
    }
    return shopper(
        balance=draw(st.integers(0, 3_000)),
        tier=tier,
        plans=frozenset(draw(st.lists(st.sampled_from(PLANS), max_size=2))),
        history=history,
        bought=bought,
    )


@st.composite
def signal_sets(draw: st.DrawFn, items: list[Offerable]) -> Signals:
    ids = [offerable.item_id for offerable in items] or [99]
    neighbours = {
        one: tuple(
            (other, draw(st.floats(0.01, 1.0)))
            for other in draw(st.lists(st.sampled_from(ids), max_size=4, unique=True))
        )
        for one in ids
    }
    popularity = {one: draw(st.integers(0, 50)) for one in ids}
    return Signals(neighbours, popularity, {"GOLD": dict(popularity)})


def _may_order(offerable: Offerable, who: Shopper) -> bool:
    """An oracle written apart from the code: whether the item may be ordered now."""
    if offerable.starts_at is not None and offerable.starts_at > NOW:
        return False
    if offerable.ends_at is not None and offerable.ends_at <= NOW:
        return False
    sale = offerable.pricing.sale
    on_sale = sale is not None and sale.starts_at <= NOW < sale.ends_at
    if sale is not None and not on_sale:
        return False
    stock = offerable.sale_stock if on_sale else offerable.stock
    if stock == 0:
        return False
    if offerable.kind is ItemKind.BOOKING and not offerable.has_free_slot:
        return False
    rule = offerable.eligibility
    if rule.exclusive and not who.tier_is_exclusive:
        return False
    return not (
        (rule.tiers or rule.plans)
        and who.tier_code not in rule.tiers
        and not (who.plans & set(rule.plans))
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_only_items_the_member_may_order_are_offered_each_with_reasons(data: st.DataObject) -> None:
    items = data.draw(catalogs())
    who = data.draw(shoppers(items))
    signals = data.draw(signal_sets(items))
    offers = rank(items, who, signals, NOW, ZONE, None)
    offered = {offer.item.item_id for offer in offers}
    for offerable in items:
        if not _may_order(offerable, who):
            assert offerable.item_id not in offered
    for offer in offers:
        assert offer.reasons, offer
        assert offer.score >= 0
        bucket, lack = affordability(offer.points, who.balance)
        assert (offer.affordability, offer.points_to_go) == (bucket, lack)
        assert (offer.points <= who.balance) is (offer.affordability is Affordability.AFFORDABLE)
    order = [(o.affordability, -o.score, o.item.code) for o in offers]
    assert order == sorted(order)
    assert len({offer.item.code for offer in offers}) == len(offers)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), seed=st.integers(0, 1000), limit=st.integers(1, 5))
def test_the_order_does_not_depend_on_the_order_of_the_inputs(
    data: st.DataObject, seed: int, limit: int
) -> None:
    items = data.draw(catalogs())
    who = data.draw(shoppers(items))
    signals = data.draw(signal_sets(items))
    first = rank(items, who, signals, NOW, ZONE, None)
    shuffled_items, shuffled_history = list(items), list(who.history)
    random.Random(seed).shuffle(shuffled_items)
    random.Random(seed).shuffle(shuffled_history)
    again = rank(
        shuffled_items,
        Shopper(**{**_fields(who), "history": tuple(shuffled_history)}),
        signals,
        NOW,
        ZONE,
        None,
    )
    assert [(o.item.code, o.score, o.reasons) for o in again] == [
        (o.item.code, o.score, o.reasons) for o in first
    ]
    assert rank(items, who, signals, NOW, ZONE, limit) == first[:limit]


def _fields(who: Shopper) -> dict[str, object]:
    return {name: getattr(who, name) for name in Shopper.__slots__}  # type: ignore[attr-defined]


# --- Examples ---------------------------------------------------------------------------------


def test_a_member_sees_the_category_they_redeemed_recently_first() -> None:
    catalog = [
        item(1, categories=("books",)),
        item(2, categories=("travel",)),
        item(3, categories=("food",)),
    ]
    who = shopper(history=(past(7, 300, ("food",)), past(8, 5, ("travel",))))
    offers = rank(catalog, who, Signals(), NOW, ZONE)
    assert [offer.item.code for offer in offers] == ["I002", "I003", "I001"]
    assert keys(offers[0])[0] == "you_redeemed_category:travel"
    assert "affordable" in keys(offers[0])
    assert keys(offers[2]) == ["affordable"]  # nothing else to say but that it is affordable


def test_a_more_recent_redemption_weighs_more() -> None:
    assert recency_weight(NOW, NOW) == 1.0
    assert recency_weight(NOW - timedelta(days=90), NOW) == 0.5
    assert recency_weight(NOW + timedelta(days=1), NOW) == 1.0  # never above 1


def test_similar_members_reason_names_the_item_it_goes_with() -> None:
    catalog = [item(1), item(2, categories=("travel",)), item(3, categories=("food",))]
    signals = Signals(neighbours={1: ((3, 0.8), (2, 0.1))}, popularity={2: 5, 3: 1})
    offers = rank(catalog, shopper(history=(past(1, 1),)), signals, NOW, ZONE)
    # Similar members (3.0 and a little popularity) before the item redeemed itself (its
    # category 2.0, a repeat 1.0).
    assert [offer.item.code for offer in offers] == ["I003", "I001", "I002"]
    assert offers[0].reasons[0].code is ReasonCode.SIMILAR_MEMBERS
    assert dict(offers[0].reasons[0].params) == {"item": "I001"}
    assert keys(offers[1])[:2] == ["you_redeemed_category:books", "you_redeemed_item"]


def test_a_new_member_is_ranked_by_popularity_in_their_tier_then_overall() -> None:
    catalog = [item(1), item(2), item(3)]
    signals = Signals(popularity={1: 100, 2: 10, 3: 1}, tier_popularity={"GOLD": {3: 40, 2: 40}})
    gold = rank(catalog, shopper(tier="GOLD"), signals, NOW, ZONE)
    assert [offer.item.code for offer in gold] == ["I002", "I003", "I001"]
    assert keys(gold[0])[0] == "new_member_popular:GOLD"
    bronze = rank(catalog, shopper(tier="BRONZE"), signals, NOW, ZONE)
    assert [offer.item.code for offer in bronze] == ["I001", "I002", "I003"]
    assert next(reason.params for reason in bronze[0].reasons) == {}
    nothing = rank(catalog, shopper(), Signals(), NOW, ZONE)
    assert [offer.item.code for offer in nothing] == ["I001", "I002", "I003"]
    assert all(keys(offer) == ["affordable"] for offer in nothing)


def test_affordable_items_come_first_then_those_a_few_points_away() -> None:
    catalog = [item(1, points=2_000), item(2, points=1_200), item(3, points=900)]
    signals = Signals(popularity={1: 100, 2: 50, 3: 1})
    offers = rank(catalog, shopper(balance=1_000), signals, NOW, ZONE)
    assert [offer.item.code for offer in offers] == ["I003", "I002", "I001"]
    assert [offer.affordability for offer in offers] == list(Affordability)
    assert "points_to_go:200" in keys(offers[1])
    assert offers[2].points_to_go == 1_000
    assert not {"affordable", "points_to_go:1000"} & set(keys(offers[2]))
    blind = rank(catalog, shopper(balance=1_000), signals, NOW, ZONE, use_balance=False)
    assert [offer.item.code for offer in blind] == ["I001", "I002", "I003"]


def test_exclusive_plan_tier_price_and_sale_items_say_so() -> None:
    sale = Sale(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 10, 1)
    catalog = [
        item(1, eligibility=Eligibility(exclusive=True)),
        item(2, eligibility=Eligibility(plans=("VIP88",))),
        item(3, pricing=Pricing(100, {"DIAMOND": 80}, None)),
        item(4, pricing=Pricing(100, {}, sale)),
    ]
    diamond = shopper(tier="DIAMOND", plans=frozenset({"VIP88"}))
    found = {offer.item.code: offer for offer in rank(catalog, diamond, Signals(), NOW, ZONE)}
    assert "exclusive:DIAMOND" in keys(found["I001"])
    assert "plan_member:VIP88" in keys(found["I002"])
    assert "tier_price:DIAMOND" in keys(found["I003"])
    assert found["I003"].points == 80
    assert keys(found["I004"])[0] == f"flash_sale:{sale.ends_at.isoformat()}"
    assert found["I004"].points == 10
    bronze = {offer.item.code for offer in rank(catalog, shopper(), Signals(), NOW, ZONE)}
    assert bronze == {"I003", "I004"}


def test_items_out_of_stock_out_of_window_or_at_their_limit_are_not_offered() -> None:
    later = NOW + timedelta(days=1)
    catalog = [
        item(1, stock=0),
        item(2, starts_at=later),
        item(3, limit_count=1, limit_period=LimitPeriod.MONTH),
        item(4, kind=ItemKind.BOOKING, has_free_slot=False),
        item(5, pricing=Pricing(100, {}, Sale(later, later + timedelta(hours=1), 5, None))),
        item(6, stock=1),
    ]
    who = shopper(bought={(3, "m:2026-12"): 1})
    assert [offer.item.code for offer in rank(catalog, who, Signals(), NOW, ZONE)] == ["I006"]
    assert unavailability(catalog[2], who, NOW, ZONE) == "limit reached"
    assert unavailability(catalog[2], shopper(bought={(3, "m:2026-11"): 1}), NOW, ZONE) is None
