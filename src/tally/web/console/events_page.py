"""The console's event explorer: an event found by its Tally id, by its partner and the
partner's event id, or a member's latest events, each with its explanation — the rules that
applied (points, growth value, arm, what a cap or budget cut) and those skipped, and why."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import NotFound, ValidationFailed
from tally.events import repository as events
from tally.events.models import StoredEvent
from tally.partners import service as partners
from tally.programme.domain import Money
from tally.rules.engine import Reason
from tally.staff.service import Permission
from tally.web.console.auth import Staff, record_view, require
from tally.web.console.forms import member_id as parse_member
from tally.web.console.pages import page
from tally.web.http import gettext
from tally.web.i18n import N_
from tally.web.sessions import Flash

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Field = Annotated[str, Query(max_length=200)]
LATEST = 20
VIEWED = "member.events_view"  # the audit action of a look at members' events
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")

#: How skip reasons (and cuts) read on the page.
REASONS = {
    Reason.CONDITION_FALSE.value: N_("Condition false"),
    Reason.CAPPED.value: N_("Capped"),
    Reason.BUDGET_EXHAUSTED.value: N_("Budget exhausted"),
    Reason.OUTSIDE_SCHEDULE.value: N_("Outside the schedule"),
    Reason.NOT_THIS_EVENT_TYPE.value: N_("Not this event type"),
    Reason.HOLDOUT.value: N_("Holdout"),
    Reason.STOPPED_BY_HIGHER_RULE.value: N_("Stopped by a higher rule"),
    Reason.PAUSED.value: N_("Campaign paused"),
}


@dataclass(frozen=True, slots=True)
class Found:
    """A stored event as the explorer shows it."""

    id: uuid.UUID
    event_id: str
    type: str
    partner: str
    member_id: int
    occurred_at: datetime
    received_at: datetime
    amount: Money | None
    points: int
    growth: int
    transaction_id: uuid.UUID | None
    programme_version: int
    rules: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    arms: dict[str, str | None]


def _found(row: StoredEvent, codes: dict[int, str]) -> Found:
    amount = (
        Money(row.amount_minor, row.currency)
        if row.amount_minor is not None and row.currency is not None
        else None
    )
    return Found(
        id=row.id,
        event_id=row.event_id,
        type=row.type,
        partner="Tally" if row.partner_id is None else codes.get(row.partner_id, "?"),
        member_id=row.member_id,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        amount=amount,
        points=row.points,
        growth=row.growth,
        transaction_id=row.transaction_id,
        programme_version=row.programme_version,
        rules=list(row.outcome.get("rules", [])),
        skipped=list(row.outcome.get("skipped", [])),
        arms=dict(row.outcome.get("arms", {})),
    )


@router.get("/events")
def events_page(
    request: Request,
    staff: Viewer,
    tally_id: Annotated[str, Query(alias="id", max_length=200)] = "",
    partner: Field = "",
    event_id: Field = "",
    member: Field = "",
) -> Response:
    """Find events (by Tally id, by partner and event id, or a member's latest) and explain
    each; nothing asked: the search form alone."""
    asked = {"id": tally_id.strip(), "partner": partner.strip(), "event_id": event_id.strip()}
    asked["member"] = member.strip()
    with database(request).read() as session:
        rows, problem = _search(session, asked)
        codes = {found.id: found.code for found in partners.partners(session)} if rows else {}
    flashes = [Flash("error", gettext(request, problem))] if problem else []
    for shown in sorted({row.member_id for row in rows}):  # a look at members' purchases
        record_view(request, staff, VIEWED, member_id=shown, details={"search": asked})
    context = {
        "asked": asked,
        "searched": any(asked.values()),
        "events": [_found(row, codes) for row in rows],
        "reasons": REASONS,
        "section": "events",
        "page_url": "/console/events",
    }
    status = 422 if problem else 200
    return page(request, "console/events.html", staff, context, status=status, flashes=flashes)


#: What a search that cannot be answered says.
BAD_ID = N_("A Tally event id is a UUID, like 0190f3c5-7d2a-7b4e-9a61-2f0c1d9e8b70.")
BAD_MEMBER = N_("Enter a member's Tally id.")
NO_PARTNER = N_("No partner has that code.")
NEEDS_BOTH = N_("Give both the partner's code and its event id.")


def _search(session: Session, asked: dict[str, str]) -> tuple[list[StoredEvent], str | None]:
    """The events asked for, newest first, or why the question cannot be answered."""
    if asked["id"]:
        if not _UUID.fullmatch(asked["id"]):
            return [], BAD_ID
        wanted = uuid.UUID(asked["id"])
        return list(events.by_ids(session, [wanted]).values()), None
    if asked["partner"] or asked["event_id"]:
        if not (asked["partner"] and asked["event_id"]):
            return [], NEEDS_BOTH
        try:
            found = partners.partner_by_code(session, asked["partner"])
        except NotFound:
            return [], NO_PARTNER
        stored = events.find(session, events.source_of(found.id), [asked["event_id"]])
        return list(events.by_ids(session, list(stored.values())).values()), None
    if asked["member"]:
        try:
            member_id = parse_member(asked["member"])
        except ValidationFailed:
            return [], BAD_MEMBER
        return events.history(session, member_id, limit=LATEST), None
    return [], None
