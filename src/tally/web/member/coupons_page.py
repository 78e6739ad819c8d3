"""The member's coupon wallet (``/m/coupons``): the codes it can use now (and soon), then those
used and those expired, each with what it takes off."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.coupons import domain
from tally.coupons import service as coupons
from tally.web import sessions, tier_views
from tally.web.coupon_views import terms_text
from tally.web.http import programme_in_force, redirect, render
from tally.web.member import auth

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE_URL = "/m/coupons"
#: The wallet's sections, in the order shown.
SECTIONS = ("valid", "upcoming", "used", "expired")


def wallet_sections(items: list[coupons.WalletItem]) -> dict[str, list[dict[str, Any]]]:
    """The wallet's codes by state, each as the page shows it."""
    found: dict[str, list[dict[str, Any]]] = {state: [] for state in SECTIONS}
    for item in items:
        found[item.state].append(
            {
                "code": domain.formatted(item.coupon.code),
                "names": item.template.names,
                "terms": terms_text(item.template),
                "valid_from": item.template.valid_from,
                "valid_until": item.template.valid_until,
                "redeemed_at": item.coupon.redeemed_at,
            }
        )
    return found


@router.get("/coupons")
def show_wallet(request: Request) -> Response:
    """The signed-in member's coupons: valid, not yet valid, used, expired."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        items = coupons.wallet(session, member_id, sessions.now(request))
        theme = tier_views.theme_of(session, member_id, programme)
    browser = auth.member_session(request)
    context = {
        "sections": wallet_sections(items),
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": browser.csrf_token(),
    }
    return render(request, "member/coupons.html", context)
