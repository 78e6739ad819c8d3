"""The console's webhooks (administrators): every partner's subscriptions, their deliveries with
the receiver's answer, re-enabling a disabled subscription and replaying a delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import NotFound
from tally.staff.service import Permission
from tally.web.console.auth import Staff, record, require
from tally.web.console.pages import flash, page
from tally.web.http import redirect
from tally.web.i18n import N_
from tally.web.sessions import now
from tally.webhooks import repository
from tally.webhooks import service as webhooks

router = APIRouter()
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
PAGE_URL = "/console/webhooks"
Id = Annotated[int, Path(gt=0, le=2**62)]
DELIVERIES = 50

#: How statuses read on the page.
STATUSES = {
    "active": N_("Active"),
    "disabled": N_("Disabled"),
    "pending": N_("Pending"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: int
    partner: str
    url: str
    event_types: list[str]
    status: str
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    event_type: str
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    response_ms: int | None
    next_attempt_at: datetime | None


def _url(subscription_id: int | None) -> str:
    return f"{PAGE_URL}?subscription={subscription_id}" if subscription_id else PAGE_URL


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    staff: Manager,
    subscription: Annotated[int | None, Query(gt=0, le=2**62)] = None,
) -> Response:
    """Every partner's subscriptions; the chosen one's latest deliveries."""
    with database(request).read() as session:
        rows = [
            SubscriptionRow(
                id=found.id,
                partner=code,
                url=found.url,
                event_types=list(found.event_types),
                status=found.status.value,
                consecutive_failures=found.consecutive_failures,
                disabled_reason=found.disabled_reason,
                created_at=found.created_at,
            )
            for found, code in repository.console_rows(session)
        ]
        chosen = next((row for row in rows if row.id == subscription), None)
        deliveries = (
            [
                DeliveryRow(
                    id=row.id,
                    event_type=event_type,
                    event_id=str(event_id),
                    status=row.status.value,
                    attempts=row.attempts,
                    last_status_code=row.last_status_code,
                    last_error=row.last_error,
                    last_attempt_at=row.last_attempt_at,
                    response_ms=row.response_ms,
                    next_attempt_at=row.next_attempt_at if row.status.value == "pending" else None,
                )
                for row, event_id, event_type in repository.deliveries(
                    session, chosen.id, DELIVERIES
                )
            ]
            if chosen
            else []
        )
    context = {
        "rows": rows,
        "chosen": chosen,
        "deliveries": deliveries,
        "statuses": STATUSES,
        "section": "webhooks",
        "page_url": _url(subscription),
    }
    return page(request, "console/webhooks.html", staff, context)


@router.post("/webhooks/{subscription_id}/enable")
def enable(request: Request, staff: Manager, subscription_id: Id) -> Response:
    """Re-enable a disabled subscription: its pending deliveries resume, in order."""
    try:
        with database(request).write() as session:
            found = webhooks.enable(session, subscription_id, now(request))
            record(
                request,
                session,
                staff,
                "webhook.enable",
                details={"subscription": subscription_id, "url": found.url},
            )
    except NotFound:
        flash(request, "error", N_("No such webhook subscription."))
        return redirect(request, PAGE_URL)
    flash(request, "success", N_("The subscription is active again."))
    return redirect(request, _url(subscription_id))


@router.post("/webhooks/deliveries/{delivery_id}/replay")
def replay(request: Request, staff: Manager, delivery_id: Id) -> Response:
    """Send a delivery again (with the same webhook-id), its attempts counted afresh."""
    with database(request).write() as session:
        found = repository.delivery(session, delivery_id)
        if found is None:
            flash(request, "error", N_("No such webhook delivery."))
            return redirect(request, PAGE_URL)
        webhooks.replay(session, delivery_id, now(request))
        record(
            request,
            session,
            staff,
            "webhook.replay",
            details={"delivery": delivery_id, "subscription": found.subscription_id},
        )
        subscription_id = found.subscription_id
    flash(request, "success", N_("The delivery will be sent again within seconds."))
    return redirect(request, _url(subscription_id))
