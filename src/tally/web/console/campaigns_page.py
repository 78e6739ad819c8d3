"""The console's campaigns: every campaign of the programme in force with its status,
schedule, budget used and the day's points; one campaign with its A/B results per arm; pausing
and resuming (staff with the ``campaigns`` permission, once per form, after a confirmation,
audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit.domain import parse_actor
from tally.campaigns import service as campaigns
from tally.campaigns.domain import ArmResult
from tally.campaigns.service import CampaignView
from tally.errors import NotFound, TallyError
from tally.flows.event_intake import book_for
from tally.partners.models import Partner
from tally.programme.domain import Money
from tally.programme.shapes import CODE_PATTERN
from tally.staff import service as staff_service
from tally.staff.service import Permission
from tally.web.console import once
from tally.web.console.auth import Staff, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, client_of, now

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Operator = Annotated[Staff, Depends(require(Permission.CAMPAIGNS))]
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]
Text = Annotated[str, Form(max_length=200)]
FORM = "campaign"  # the purpose of the pause and resume forms

#: How statuses read on the page.
STATUSES = {
    "scheduled": N_("Scheduled"),
    "running": N_("Running"),
    "paused": N_("Paused"),
    "ended": N_("Ended"),
}


def _url(code: str) -> str:
    return f"/console/campaigns/{code}"


@router.get("/campaigns")
def campaigns_page(request: Request, staff: Viewer) -> Response:
    """Every campaign of the programme in force, as it stands now."""
    with database(request).read() as session:
        found = programme_in_force(request, session)
        views = campaigns.campaigns(session, found, book_for(found), now(request))
    context = {
        "campaigns": views,
        "statuses": STATUSES,
        "section": "campaigns",
        "page_url": "/console/campaigns",
    }
    return page(request, "console/campaigns.html", staff, context)


def campaign_page(
    request: Request,
    staff: Staff,
    code: str,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
) -> Response:
    """One campaign: its state, its A/B results per arm, and the pause or resume form."""
    with database(request).read() as session:
        found = programme_in_force(request, session)
        book = book_for(found)
        view = campaigns.campaign(session, found, book, code, now(request))
        arms = campaigns.results(session, book, code)
        currency = found.currency.point_value.currency
        changed_by = _who(session, view.changed_by)
    context = {
        "campaign": view,
        "changed_by": changed_by,
        "arms": [_arm_row(arm, currency) for arm in arms],
        "statuses": STATUSES,
        "nonce": once.issue(request, FORM) if staff.can(Permission.CAMPAIGNS) else "",
        "section": "campaigns",
        "page_url": _url(code),
    }
    return page(request, "console/campaign.html", staff, context, status=status, flashes=flashes)


def _who(session: Session, actor: str | None) -> str | None:
    """Who last paused or resumed, as people read it: a staff member's name, a partner's code."""
    if actor is None:
        return None
    kind, number = parse_actor(actor)
    if kind == "staff" and number is not None:
        name = staff_service.display_names(session, {number}).get(number, actor)
        return f"{name} (#{number})"
    if kind == "partner" and number is not None:
        found = session.get(Partner, number)
        return f"{found.code} (API)" if found else actor
    return actor


def _arm_row(arm: ArmResult, currency: str) -> dict[str, object]:
    """An arm's totals, and the amount per member (rounded down to the minor unit)."""
    return {
        "arm": arm.arm,
        "members": arm.members,
        "events": arm.events,
        "points": arm.points,
        "growth": arm.growth,
        "amount": Money(arm.amount_minor, currency),
        "amount_per_member": Money(arm.amount_minor // (arm.members or 1), currency),
    }


@router.get("/campaigns/{code}")
def show_campaign(request: Request, staff: Viewer, code: Code) -> Response:
    """One campaign and its results."""
    try:
        return campaign_page(request, staff, code)
    except NotFound:
        flash(request, "error", N_("No such campaign in the programme in force."))
        return redirect(request, "/console/campaigns")


def _set_paused(request: Request, staff: Staff, code: str, nonce: str, *, paused: bool) -> Response:
    def work(session: Session) -> tuple[CampaignView, dict[str, object]]:
        found = programme_in_force(request, session)
        view = campaigns.set_paused(
            session,
            found,
            book_for(found),
            code,
            paused=paused,
            actor=staff.actor,
            now=now(request),
            address=client_of(request).address,
        )
        return view, {"campaign": code, "paused": paused}

    try:
        form = once.checked(request, staff, FORM, nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        return campaign_page(
            request, staff, code, status=error.status, flashes=[error_flash(request, error)]
        )
    if isinstance(outcome, once.Done):
        flash(request, "info", N_("This form was already sent; nothing was repeated."))
    elif paused:
        flash(request, "success", N_("The campaign is paused: its rules give nothing."))
    else:
        flash(request, "success", N_("The campaign runs again."))
    return redirect(request, _url(code))


@router.post("/campaigns/{code}/pause")
def pause(request: Request, staff: Operator, code: Code, nonce: Text = "") -> Response:
    """Pause the campaign (after the page's confirmation), once per form."""
    return _set_paused(request, staff, code, nonce, paused=True)


@router.post("/campaigns/{code}/resume")
def resume(request: Request, staff: Operator, code: Code, nonce: Text = "") -> Response:
    """Resume the campaign, once per form."""
    return _set_paused(request, staff, code, nonce, paused=False)
