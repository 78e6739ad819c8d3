"""The mall's kinds, statuses and order events as the pages say them (translated in the
templates: ``{{ _(labels.mall.statuses[order.status]) }}``)."""

from __future__ import annotations

from typing import Any

from tally.web.i18n import N_

#: An order's one-word summary (:func:`tally.mall.domain.summary`).
STATUSES: dict[str, str] = {
    "awaiting_payment": N_("Awaiting payment"),
    "processing": N_("Processing"),
    "shipped": N_("Shipped"),
    "completed": N_("Completed"),
    "refunded": N_("Refunded"),
    "lapsed": N_("Lapsed"),
    "cancelled": N_("Order cancelled"),
}
PAYMENTS: dict[str, str] = {
    "pending": N_("Not paid yet"),
    "paid": N_("Payment received"),
    "part_refunded": N_("Partly refunded"),
    "refunded": N_("Refunded"),
    "lapsed": N_("Not paid in time"),
    "cancelled": N_("Cancelled before payment"),
}
FULFILMENTS: dict[str, str] = {
    "unfulfilled": N_("Not sent yet"),
    "requested": N_("Requested from the supplier"),
    "shipped": N_("On its way"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Will not be sent"),
}
#: Order events (``placed`` and :class:`tally.mall.domain.Action` values).
EVENTS: dict[str, str] = {
    "placed": N_("Order placed"),
    "paid": N_("Payment received"),
    "lapsed": N_("Not paid in time: points and stock given back"),
    "cancelled": N_("Order cancelled"),
    "fulfilment_requested": N_("Requested from the supplier"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "confirmed": N_("Fulfilled by the supplier"),
    "completed": N_("Delivered"),
    "refunded": N_("Refunded"),
    "part_refunded": N_("Partly refunded"),
    "auto_refunded": N_("Refunded automatically: not shipped in time"),
}
KINDS: dict[str, str] = {
    "physical": N_("Goods"),
    "digital_code": N_("Digital code"),
    "coupon": N_("Coupon"),
    "partner_benefit": N_("Partner benefit"),
    "booking": N_("Booking"),
    "ticket": N_("Event ticket"),
    "donation": N_("Donation"),
    "plan": N_("Paid membership"),
}
#: Per-member limit periods: "%(count)s per month".
LIMIT_PERIODS: dict[str, str] = {
    "day": N_("%(count)s per day"),
    "week": N_("%(count)s per week"),
    "month": N_("%(count)s per month"),
    "year": N_("%(count)s per year"),
    "total": N_("%(count)s per member"),
    "sale": N_("%(count)s per member in this sale"),
}
#: A flash sale's phase.
SALE_PHASES: dict[str, str] = {"upcoming": N_("Upcoming"), "open": N_("On now"), "over": N_("Over")}

#: Why an item is ranked for the member (:class:`tally.offers.domain.ReasonCode`).
OFFER_REASONS: dict[str, str] = {
    "similar_members": N_("Members who redeemed what you did chose this"),
    "you_redeemed_category": N_("You like %(category)s"),
    "you_redeemed_item": N_("You redeemed this before"),
    "popular_in_tier": N_("Popular in your tier"),
    "popular": N_("Popular in the mall"),
    "new_member_popular": N_("Popular with members like you"),
    "affordable": N_("You have enough points"),
    "points_to_go": N_("%(points)s points to go"),
    "exclusive": N_("Only for your tier"),
    "plan_member": N_("For your paid membership"),
    "tier_price": N_("Your tier's price"),
    "flash_sale": N_("On flash sale now"),
    "in_the_mall": N_("New in the mall"),
}
ALL: dict[str, Any] = {
    "statuses": STATUSES,
    "payments": PAYMENTS,
    "fulfilments": FULFILMENTS,
    "events": EVENTS,
    "kinds": KINDS,
    "limit_periods": LIMIT_PERIODS,
    "sale_phases": SALE_PHASES,
    "offer_reasons": OFFER_REASONS,
}
