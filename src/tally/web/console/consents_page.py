"""Recording a member's consent in the console: the member grants or withdraws a partner's use
of its data at the service desk or on the phone, and a staff member with ``record_consent``
(administrators, support; never auditors) records it on the member page.

The act is recorded with the channel ``console`` and the staff member (``recorded_by``), and
audited (``consent.grant`` / ``consent.withdraw``), in one transaction. The form carries a
one-time nonce, claimed in the idempotency records (principal ``staff:<id>``) first in that
transaction: a second submit of the same form — a double click, a refresh — records nothing,
even when both arrive at once. Repeating the standing state records nothing either.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit.domain import staff_actor
from tally.db.raw import INTEGRITY_ERRORS
from tally.db.session import Database
from tally.errors import Conflict, IdempotencyConflict, TallyError, ValidationFailed
from tally.idempotency import service as idempotency
from tally.privacy import service as privacy
from tally.privacy.domain import CONSOLE
from tally.staff.service import Permission
from tally.web import sessions
from tally.web.console import forms
from tally.web.console.auth import Staff, require
from tally.web.console.consent_views import PURPOSES
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
    staff_id: int,
    member_id: int,
    partner: str,
    purpose: str,
    grant: bool,
    nonce: str,
    now: datetime,
    address: str | None,
) -> bool | None:
    """Record the act once per form: ``True`` recorded, ``False`` already so, ``None`` this
    form was already submitted."""
    principal, key = staff_actor(staff_id), f"console-consent:{nonce}"
    body = json.dumps({"member": member_id, "partner": partner, "purpose": purpose, "grant": grant})
    fingerprint = idempotency.request_hash(
        "POST", f"/console/members/{member_id}/consents", body.encode()
    )
    claimed = False
    try:
        with db.write() as session:
            if idempotency.replay(session, principal, key, fingerprint) is not None:
                return None
            # Claimed first: a concurrent submit of the same form waits here, then fails.
            idempotency.remember(session, principal, key, fingerprint, 201, body)
            claimed = True
            return privacy.record(
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
    except IdempotencyConflict:
        return None  # the same form, resubmitted with other choices: still only once
    except INTEGRITY_ERRORS:
        if not claimed:
            return None  # a concurrent submit of the same form won the race
        raise Conflict("The member's consents changed meanwhile; retry.") from None


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
    nonce: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record a grant (``grant=1``) or withdrawal (``grant=0``) the member made by phone or at
    the desk; back to the member page, which lists it."""
    try:
        granting = _grant(grant)
        changed = record(
            database(request),
            staff_id=staff.id,
            member_id=member_id,
            partner=partner,
            purpose=purpose,
            grant=granting,
            nonce=forms.nonce(nonce),
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
