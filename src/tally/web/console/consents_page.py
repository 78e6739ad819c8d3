"""Recording a member's consent in the console: the member grants or withdraws a partner's use
of its data at the service desk or on the phone, and a staff member with ``record_consent``
(administrators, support; never auditors) records it on the member page.

The act is recorded with the channel ``console`` and the staff member (``recorded_by``), and
audited (``consent.grant`` / ``consent.withdraw``), in one transaction. The form is sent once
(:mod:`tally.web.console.once`, its token bound to the session): a second submit of the same
form — a double click, a refresh — records nothing, even when both arrive at once. Repeating the
standing state records nothing either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit.domain import staff_actor
from tally.db.session import Database
from tally.errors import TallyError, ValidationFailed
from tally.privacy import service as privacy
from tally.privacy.domain import CONSOLE
from tally.staff.service import Permission
from tally.web import sessions
from tally.web.console import once
from tally.web.console.auth import Staff, require
from tally.web.console.consent_views import CONSENT_FORM, PURPOSES
from tally.web.console.member_page import MemberId, member_page, member_url
from tally.web.console.pages import error_flash, flash
from tally.web.http import gettext, redirect
from tally.web.i18n import N_

router = APIRouter()
Recorder = Annotated[Staff, Depends(require(Permission.RECORD_CONSENT))]
GRANTED = N_("Recorded the member's consent: %(partner)s, %(purpose)s.")
WITHDRAWN = N_("Recorded the member's withdrawal: %(partner)s, %(purpose)s.")
UNCHANGED = N_("It was already so: nothing was recorded.")
REPEATED = N_("This form was already recorded; it was not recorded again.")


def record(
    db: Database,
    *,
    form: once.Form,
    staff_id: int,
    member_id: int,
    partner: str,
    purpose: str,
    grant: bool,
    now: datetime,
    address: str | None,
) -> bool | None:
    """Record the act once per form: ``True`` recorded, ``False`` already so, ``None`` this
    form was already submitted."""

    def work(session: Session) -> tuple[bool, dict[str, object]]:
        changed = privacy.record(
            session,
            member_id,
            partner,
            purpose,
            grant=grant,
            channel=CONSOLE,
            actor=staff_actor(staff_id),
            now=now,
            address=address,
            recorded_by=staff_id,
        )
        answer = {"member": member_id, "partner": partner, "purpose": purpose, "grant": grant}
        return changed, answer

    done = once.run(db, form, work)
    return None if isinstance(done, once.Done) else done


def _grant(text: str) -> bool:
    if text not in {"0", "1"}:
        raise ValidationFailed("grant is 1 (grant) or 0 (withdraw).", field="grant")
    return text == "1"


@router.post("/members/{member_id}/consents")
def record_consent(
    request: Request,
    staff: Recorder,
    member_id: MemberId,
    partner: Annotated[str, Form(max_length=64)] = "",
    purpose: Annotated[str, Form(max_length=32)] = "",
    grant: Annotated[str, Form(max_length=1)] = "",
    nonce: Annotated[str, Form(alias=once.FIELD, max_length=200)] = "",
) -> Response:
    """Record a grant (``grant=1``) or withdrawal (``grant=0``) the member made by phone or at
    the desk; back to the member page, which lists it."""
    try:
        granting = _grant(grant)
        changed = record(
            database(request),
            form=once.checked(request, staff, CONSENT_FORM, nonce),
            staff_id=staff.id,
            member_id=member_id,
            partner=partner,
            purpose=purpose,
            grant=granting,
            now=sessions.now(request),
            address=sessions.client_of(request).address,
        )
    except TallyError as error:
        return member_page(
            request, staff, member_id, status=error.status, flashes=[error_flash(request, error)]
        )
    if changed is None:
        flash(request, "info", REPEATED)
    elif not changed:
        flash(request, "info", UNCHANGED)
    else:
        with database(request).read() as session:
            name = privacy.partner_named(session, partner).name
        flash(
            request,
            "success",
            GRANTED if granting else WITHDRAWN,
            partner=name,
            purpose=gettext(request, PURPOSES[purpose]),
        )
    return redirect(request, member_url(member_id) + "#consents")
