"""Samples of the coupon pages (the console's templates and template, the member's wallet) for
the template suite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tally.coupons import service as coupons
from tally.coupons.domain import CouponStatus, Kind, RedemptionStatus, Source
from tally.coupons.models import Coupon, CouponRedemption, CouponTemplate
from tally.programme.domain import Money
from tally.web.console.auth import Staff
from tally.web.console.coupons_page import masked
from tally.web.coupon_views import terms_text
from tally.web.member.coupons_page import wallet_sections

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
Sample = tuple[str, dict[str, Any], str | None]


def template(code: str, kind: Kind, **extra: Any) -> CouponTemplate:
    fields: dict[str, Any] = {
        "id": 1, "code": code, "kind": kind, "value": 1500, "currency": "CNY", "cap": None,
        "min_spend": None, "categories": [], "skus": [], "partners": [], "total_limit": None,
        "per_member_limit": None, "valid_from": None, "valid_until": None, "shared_code": False,
        "names": {"zh-CN": "满减 <b>", "en": "Off <b>"}, "owner_partner_id": None,
        "created_by_staff_id": 1, "issued": 3, "redeemed": 1, "rolled_back": 1, "created_at": NOW,
    }  # fmt: skip
    return CouponTemplate(**{**fields, **extra})


def code(status: CouponStatus, member_id: int | None = 7) -> Coupon:
    return Coupon(id=1, template_id=1, code="ABCD2345EFGH", member_id=member_id, status=status,
                  source=Source.OPERATOR, grant_key=None, issued_at=NOW,
                  redeemed_at=NOW if status is CouponStatus.REDEEMED else None)  # fmt: skip


def coupon_samples(base: dict[str, Any], admin: Staff, auditor: Staff) -> list[Sample]:
    """The list (empty, amount and percent templates; with and without the form), one template
    (with its use and just-issued codes, as an auditor), and the wallet (every state, empty)."""
    percent = template("PCT", Kind.PERCENT, value=1250, cap=3000, min_spend=10_000,
                       categories=["food"], partners=["SHOP"], total_limit=100, per_member_limit=2,
                       valid_from=NOW, valid_until=NOW + timedelta(days=30))  # fmt: skip
    shared = template("SHARED", Kind.AMOUNT, shared_code=True)
    rows = [(row, terms_text(row)) for row in (percent, shared)]
    listing = {**base, "currency": "CNY", "section": "coupons", "nonce": "n"}
    redemption = CouponRedemption(id=uuid.uuid4(), template_id=1, coupon_id=1, code="X",
                                  member_id=7, partner_id=2, status=RedemptionStatus.ROLLED_BACK,
                                  cart_amount=20_000, eligible=20_000, discount=2500,
                                  currency="CNY", cart={}, redeemed_at=NOW,
                                  rolled_back_at=NOW)  # fmt: skip
    use = coupons.Usage(
        3, 2, 1, 1, [redemption], [code(CouponStatus.REDEEMED), code(CouponStatus.ISSUED, None)]
    )
    detail = {
        **base,
        "use": use,
        "masked": masked,
        "money": lambda m: Money(m, "CNY"),
        "nonce": "n",
    }
    later = template("LATER", Kind.AMOUNT, valid_from=NOW + timedelta(days=1))
    gone = template("GONE", Kind.PERCENT, value=1000, valid_until=NOW - timedelta(days=1))
    wallet = wallet_sections(
        [
            coupons.WalletItem(code(CouponStatus.ISSUED), percent, "valid"),
            coupons.WalletItem(code(CouponStatus.ISSUED), later, "upcoming"),
            coupons.WalletItem(code(CouponStatus.REDEEMED), shared, "used"),
            coupons.WalletItem(code(CouponStatus.ISSUED), gone, "expired"),
        ]
    )
    return [
        ("console/coupons.html", {**listing, "staff": admin, "templates": rows}, None),
        ("console/coupons.html", {**listing, "staff": auditor, "templates": []}, None),
        (
            "console/coupon.html",
            {
                **detail,
                "staff": admin,
                "template": percent,
                "terms": rows[0][1],
                "issued": ["ABCD-2345-EFGH"],
            },
            None,
        ),
        (
            "console/coupon.html",
            {**detail, "staff": auditor, "template": shared, "terms": rows[1][1], "issued": []},
            None,
        ),
        ("member/coupons.html", {**base, "sections": wallet, "theme": "black-gold"}, None),
        (
            "member/coupons.html",
            {**base, "sections": wallet_sections([]), "theme": "default"},
            None,
        ),
    ]
