"""The demo's rewards mall: a dozen items of every kind with local images (under
``/static/mall/``), and a few orders of demo members in different states."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import InsufficientPoints
from tally.flows import mall_orders as flow
from tally.ledger import service as ledger
from tally.ledger.domain import Policy
from tally.mall import service as catalog
from tally.mall.schemas import ItemCreate
from tally.programme.domain import Programme

IMAGES = "/static/mall"
VIDEO_CODES = 12
LOW_WATER = 5


def _item(code: str, kind: str, zh: str, en: str, image: str, **extra: Any) -> dict[str, Any]:
    descriptions = extra.pop("descriptions", None)
    return {
        "code": code,
        "kind": kind,
        "names": {"zh-CN": zh, "en": en},
        **(
            {"descriptions": {"zh-CN": descriptions[0], "en": descriptions[1]}}
            if descriptions
            else {}
        ),
        "images": [f"{IMAGES}/{image}.svg"],
        **extra,
    }


def items(now: datetime) -> list[dict[str, Any]]:
    """The demo catalog as ``POST /v1/mall/items`` bodies (windows and slots around ``now``)."""
    day = now.replace(hour=2, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return [
        _item("MUG", "physical", "云途马克杯", "Cloudway mug", "mug",
              descriptions=("陶瓷马克杯，350毫升。", "A 350 ml ceramic mug."),
              categories=["home"], price={"points": 800}, stock=200,
              per_member_limit={"count": 2, "period": "month"}),
        _item("POWER-BANK", "physical", "快充移动电源", "Fast-charge power bank", "power-bank",
              descriptions=("10000毫安，等级越高价格越低。", "10,000 mAh; the higher the tier, "
                            "the lower the price."),
              categories=["electronics"], price={"points": 3000}, stock=50,
              tier_prices={"GOLD": 2700, "PLATINUM": 2500, "DIAMOND": 2200,
                           "BLACK_DIAMOND": 2000}),
        _item("VIDEO-MONTH", "digital_code", "视频会员月卡", "Video membership, one month",
              "video-month", descriptions=("兑换码即时发放。", "The code is delivered at once."),
              categories=["digital"], price={"points": 1500}, low_water=LOW_WATER,
              per_member_limit={"count": 1, "period": "month"}),
        _item("DATA-5GB", "partner_benefit", "5GB 流量包", "5 GB data pack", "data-pack",
              descriptions=("由云途移动充值到您的号码。", "Added to your number by Cloudway "
                            "Mobile."),
              categories=["telecom"], price={"points": 1000}, ship_within="PT24H"),
        _item("SPA", "booking", "城市水疗 60 分钟", "City spa, 60 minutes", "spa",
              categories=["services"], price={"points": 2500},
              slots=[{"code": f"D{offset}-{hour:02d}", "capacity": 4,
                      "starts_at": (day + timedelta(days=offset, hours=hour - 10)).isoformat(),
                      "ends_at": (day + timedelta(days=offset, hours=hour - 9)).isoformat()}
                     for offset in (0, 1, 2) for hour in (10, 15)]),
        _item("CONCERT", "ticket", "新年音乐会门票", "New Year concert ticket", "concert",
              categories=["events"], price={"points": 5000}, stock=100,
              per_member_limit={"count": 2}),
        _item("TREES", "donation", "沙漠种一棵树", "Plant a tree in the desert", "trees",
              descriptions=("每100积分种下一棵梭梭树。", "100 points plant one saxaul tree."),
              categories=["charity"], price={"points": 100}),
        _item("HEADPHONES", "physical", "降噪耳机", "Noise-cancelling headphones", "headphones",
              categories=["electronics"], stock=30,
              price={"points": 6000, "cash": {"amount": "99.00", "currency": "CNY"}}),
        _item("BLACK-GOLD-DINNER", "ticket", "黑金主厨晚宴", "Black-gold chef's dinner",
              "black-gold-dinner", descriptions=("钻石及以上等级专享。", "For Diamond members "
                                                 "and above."),
              categories=["events"], price={"points": 20000}, stock=10, exclusive=True),
        _item("EARBUDS", "physical", "无线耳机（秒杀）", "Wireless earbuds (flash sale)",
              "earbuds", categories=["electronics"], price={"points": 3990}, stock=500,
              sale={"starts_at": (now - timedelta(hours=1)).isoformat(),
                    "ends_at": (now + timedelta(days=2)).isoformat(),
                    "points": 990, "stock": 100, "per_member_limit": 1}),
        _item("COFFEE", "physical", "精品咖啡豆（即将秒杀）", "Speciality coffee beans (flash "
              "sale soon)", "coffee", categories=["home"], price={"points": 1200}, stock=300,
              sale={"starts_at": (now + timedelta(hours=3)).isoformat(),
                    "ends_at": (now + timedelta(days=1, hours=3)).isoformat(),
                    "points": 300, "stock": 50, "per_member_limit": 1}),
        _item("VIP88-CARD", "plan", "88会员年卡", "88 VIP, one year", "vip88",
              descriptions=("积分加现金开通88会员。", "Join 88 VIP with points and cash."),
              categories=["membership"], plan="VIP88",
              price={"points": 4400, "cash": {"amount": "44.00", "currency": "CNY"}}),
    ]  # fmt: skip


def _richest(
    session: Session, member_ids: list[int], now: datetime, programme: Programme
) -> list[int]:
    balances = {
        member_id: ledger.balance(session, member_id, now, programme.zone).available
        for member_id in member_ids
    }
    return sorted(member_ids, key=lambda member_id: (-balances[member_id], member_id))


def seed(
    session: Session,
    programme: Programme,
    member_ids: list[int],
    operator_id: int,
    staff_id: int,
    now: datetime,
    policy: Policy,
) -> int:
    """The catalog, the video codes' pool, and orders in each state for the members with most
    points: paid (to ship), shipped with tracking, delivered, a code delivered, awaiting its
    cash part, refunded. Returns the number of items."""
    specs = [ItemCreate.model_validate(body) for body in items(now)]
    for spec in specs:
        catalog.create_item(session, catalog.OPERATOR, spec, programme, now - timedelta(days=3))
    codes = [f"VM-{number:04d}-{(number * 7919) % 10000:04d}" for number in range(VIDEO_CODES)]
    catalog.upload_codes(session, catalog.OPERATOR, "VIDEO-MONTH", codes, now - timedelta(days=3))
    buyers = _richest(session, member_ids, now, programme)
    if len(buyers) < 6:
        return len(specs)
    app = flow.Actor(partner_id=operator_id, is_operator=True, channel=flow.API)
    desk = flow.Actor(staff_id=staff_id, is_operator=True, channel=flow.CONSOLE)
    address = {"name": "王芳", "line": "朝阳区建国路 88 号", "city": "北京", "country": "CN"}

    def place(member_id: int, item: str, hours_ago: float, **extra: Any) -> Any:
        """The order, or ``None`` (nothing written) when this member cannot afford it — a
        small demo's members have fewer points."""
        request = flow.OrderRequest(item=item, **extra)
        moment = now - timedelta(hours=hours_ago)
        try:
            with savepoint(session):
                return flow.place_order(session, app, member_id, request, programme, policy, moment)
        except InsufficientPoints:
            return None

    place(buyers[0], "MUG", 2, address=address)  # paid, to be shipped within 48 hours
    shipped = place(buyers[1], "POWER-BANK", 20, address=address)
    if shipped is not None:
        flow.ship(session, desk, shipped.id, "SF", "SF1403998877", now - timedelta(hours=6))
    delivered = place(buyers[2], "MUG", 100, address=address)
    if delivered is not None:
        flow.ship(session, desk, delivered.id, "JD", "JD0078812345", now - timedelta(hours=90))
        flow.deliver(session, desk, delivered.id, now - timedelta(hours=40))
    place(buyers[3], "VIDEO-MONTH", 5)  # a code delivered at once
    place(buyers[3], "TREES", 30, quantity=3)
    place(buyers[4], "HEADPHONES", 0.1, address=address)  # awaiting its cash part
    refunded = place(buyers[5], "MUG", 30, address=address)
    if refunded is not None:
        flow.refund(
            session, desk, refunded.id, now - timedelta(hours=28), policy, reason="out of stock"
        )
    return len(specs)
