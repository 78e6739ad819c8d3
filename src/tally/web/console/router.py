"""The operator console's routes: staff-only by default, sign-in apart."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tally.web.console import (
    accounts_page,
    actions,
    adjustments_page,
    auctions_page,
    audit_page,
    campaigns_page,
    consents_page,
    coupons_page,
    events_page,
    home,
    mall_items,
    mall_orders,
    member_page,
    partners_page,
    programme_page,
    sessions_page,
    sign_in,
    simulate_page,
    staff_page,
    webhooks_page,
)
from tally.web.console.auth import current_staff

#: Routers of staff pages; every module's ``router`` belongs here (a test checks it).
STAFF_ROUTERS = (
    home.router,
    member_page.router,
    actions.router,
    consents_page.router,
    simulate_page.router,  # before programme_page's /programme/{version}
    programme_page.router,
    adjustments_page.router,
    sessions_page.router,
    audit_page.router,
    partners_page.router,
    staff_page.router,
    webhooks_page.router,
    accounts_page.router,
    campaigns_page.router,
    events_page.router,
    coupons_page.router,
    mall_items.router,
    mall_orders.router,
    auctions_page.router,
)

#: Every route here requires a signed-in staff member (and a CSRF token on every POST).
staff_only = APIRouter(include_in_schema=False, dependencies=[Depends(current_staff)])
for staff_router in STAFF_ROUTERS:
    staff_only.include_router(staff_router, prefix="/console")

public = sign_in.public
