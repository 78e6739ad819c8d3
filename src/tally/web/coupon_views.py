"""How the pages show a coupon template's terms (the console's and the member's wallet)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tally.coupons.domain import Kind
from tally.coupons.models import CouponTemplate
from tally.programme.domain import Money


def terms_text(row: CouponTemplate) -> dict[str, Any]:
    """A template's terms as the pages show them: money as :class:`Money`, a percent as a
    decimal of percent (``1250`` basis points → ``12.5``)."""
    currency = row.currency

    def money(value: int | None) -> Money | None:
        return None if value is None else Money(value, currency)

    percent = Decimal(row.value) / 100 if row.kind is Kind.PERCENT else None
    return {
        "amount": money(row.value) if row.kind is Kind.AMOUNT else None,
        "percent": f"{percent.normalize():f}" if percent is not None else None,
        "cap": money(row.cap),
        "min_spend": money(row.min_spend),
    }
