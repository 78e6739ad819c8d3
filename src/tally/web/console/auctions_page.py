"""The console's auctions: every auction with its status and price, one auction with its bids,
reserve, result and holds, and a form that creates an auction (managers, once per form,
audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, policy
from tally.api.paths import UUID_PATTERN
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.auctions.models import Auction
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.kit.clock import as_utc
from tally.partners import service as partners
from tally.staff.service import Permission
from tally.web.console import once
from tally.web.console.auth import Staff, record, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.member.auctions_page import PHASES
from tally.web.sessions import Flash, now

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
PAGE_URL = "/console/auctions"
FORM = "auction"
Text = Annotated[str, Form(max_length=200)]
AuctionPath = Annotated[str, Path(pattern=UUID_PATTERN)]
FIELDS = (
    "owner",
    "item",
    "name_zh",
    "name_en",
    "starts_at",
    "ends_at",
    "start_points",
    "reserve",
    "increments",
    "soft_close_seconds",
    "max_extension_seconds",
)


@dataclass(frozen=True, slots=True)
class AuctionRow:
    auction: auctions.AuctionView
    owner: str


def _owners(session: Session) -> dict[int, str]:
    return {partner.id: partner.code for partner in partners.partners(session)}


def _blank(request: Request, session: Session) -> dict[str, str]:
    channels = [spec.code for spec in programme_in_force(request, session).partners
                if spec.operator_channel]  # fmt: skip
    return {
        **dict.fromkeys(FIELDS, ""),
        "owner": channels[0] if channels else "",
        "increments": "0:10, 1000:50",
        "soft_close_seconds": "60",
        "max_extension_seconds": "600",
    }


def auctions_page(
    request: Request,
    staff: Staff,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The list and the create form (refilled after a refusal)."""
    moment = now(request)
    with database(request).read() as session:
        owners = _owners(session)
        rows = [
            AuctionRow(item, owners.get(item.partner_id, str(item.partner_id)))
            for item in auctions.listing(session, None, moment)
        ]
        blank = _blank(request, session)
    context = {
        "rows": rows,
        "phases": PHASES,
        "owners": sorted(owners.values()),
        "form": form or blank,
        "nonce": once.issue(request, FORM) if staff.can(Permission.MANAGE) else "",
        "section": "auctions",
        "page_url": PAGE_URL,
    }
    return page(request, "console/auctions.html", staff, context, status=status, flashes=flashes)


@router.get("/auctions")
def list_auctions(request: Request, staff: Viewer) -> Response:
    """Every auction, newest first, with the create form for managers."""
    return auctions_page(request, staff)


def _number(text: str, field: str, *, optional: bool = False) -> int | None:
    cleaned = text.strip().replace(",", "")
    if not cleaned and optional:
        return None
    if not cleaned.isdigit():
        raise ValidationFailed(f"{field} must be a whole number.", field=field)
    return int(cleaned)


def _moment(text: str, field: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{field} is not a date and time.", field=field) from None
    return as_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=zone))


def _increments(text: str) -> tuple[Increment, ...]:
    """``"0:10, 1000:50"``: from each price on, the step."""
    found = []
    for part in text.replace("，", ",").split(","):
        start, _colon, step = part.strip().partition(":")
        if not (start.strip().isdigit() and step.strip().isdigit()):
            raise ValidationFailed("increments are like 0:10, 1000:50.", field="increments")
        found.append(Increment(int(start), int(step)))
    return tuple(found)


def spec_of(form: dict[str, str], zone: ZoneInfo) -> auctions.AuctionSpec:
    """The auction the form asks for (times in the programme's zone)."""
    for field in ("item", "name_zh", "name_en"):
        if not form[field].strip():
            raise ValidationFailed(f"{field} is required.", field=field)
    start = _number(form["start_points"], "start_points")
    assert start is not None
    return auctions.AuctionSpec(
        item_code=form["item"].strip(),
        item_names={"zh-CN": form["name_zh"].strip(), "en": form["name_en"].strip()},
        starts_at=_moment(form["starts_at"], "starts_at", zone),
        ends_at=_moment(form["ends_at"], "ends_at", zone),
        start_points=start,
        reserve=_number(form["reserve"], "reserve", optional=True),
        increments=_increments(form["increments"]),
        soft_close_seconds=_number(form["soft_close_seconds"], "soft_close_seconds") or 0,
        max_extension_seconds=_number(form["max_extension_seconds"], "max_extension_seconds") or 0,
    )


@router.post("/auctions")
def create_auction(
    request: Request,
    staff: Manager,
    owner: Text = "",
    item: Text = "",
    name_zh: Text = "",
    name_en: Text = "",
    starts_at: Text = "",
    ends_at: Text = "",
    start_points: Text = "",
    reserve: Text = "",
    increments: Text = "",
    soft_close_seconds: Text = "",
    max_extension_seconds: Text = "",
    nonce: Text = "",
) -> Response:
    """Create an auction of partner ``owner``'s item (once per form; audited)."""
    values = {
        "owner": owner,
        "item": item,
        "name_zh": name_zh,
        "name_en": name_en,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "start_points": start_points,
        "reserve": reserve,
        "increments": increments,
        "soft_close_seconds": soft_close_seconds,
        "max_extension_seconds": max_extension_seconds,
    }

    def work(session: Session) -> tuple[Auction, dict[str, object]]:
        moment = now(request)
        spec = spec_of(values, programme_in_force(request, session).zone)
        try:
            seller = partners.partner_by_code(session, owner.strip())
        except NotFound:
            raise ValidationFailed("Choose the partner selling the item.", field="owner") from None
        row = auctions.create(session, seller.id, spec, moment, policy(request), staff_id=staff.id)
        record(
            request,
            session,
            staff,
            "auction.create",
            details={"auction": str(row.id), "item": row.item_code, "owner": seller.code},
        )
        return row, {"auction": str(row.id)}

    try:
        form = once.checked(request, staff, FORM, nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        return auctions_page(
            request, staff, status=error.status, flashes=[error_flash(request, error)], form=values
        )
    if isinstance(outcome, once.Done):
        done = str(outcome.answer.get("auction", ""))
        flash(request, "info", N_("This form was already sent: the auction exists."))
        return redirect(request, f"{PAGE_URL}/{done}" if done else PAGE_URL)
    flash(request, "success", N_("Auction created."))
    return redirect(request, f"{PAGE_URL}/{outcome.id}")


@router.get("/auctions/{auction_id}")
def show_auction(request: Request, staff: Viewer, auction_id: AuctionPath) -> Response:
    """One auction: its state, reserve, bids (with each maximum), result and holds."""
    target = uuid.UUID(auction_id)
    with database(request).read() as session:
        try:
            found = auctions.owner_view(session, target, now(request))
        except NotFound:
            flash(request, "error", N_("No such auction."))
            return redirect(request, PAGE_URL)
        owner = _owners(session).get(found.auction.partner_id, "")
        problems = auctions.check_holds(session, target)
    context: dict[str, Any] = {
        "found": found,
        "owner": owner,
        "problems": problems,
        "phases": PHASES,
        "section": "auctions",
        "page_url": f"{PAGE_URL}/{auction_id}",
    }
    return page(request, "console/auction.html", staff, context)
