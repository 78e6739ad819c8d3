"""The console's actions on a member. Each parses the form, runs one command and then either
redirects back with a success flash or re-renders the member page with the error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, policy
from tally.audit.domain import Action
from tally.errors import TallyError, ValidationFailed
from tally.kit.clock import utcnow
from tally.staff.service import Permission
from tally.web.console import adjustment_views, commands, forms, once
from tally.web.console.auth import Staff, require, trail
from tally.web.console.member_page import MemberId, member_page, member_url
from tally.web.console.pages import error_flash, flash
from tally.web.http import redirect
from tally.web.i18n import N_
from tally.web.sessions import now

router = APIRouter()
Text = Annotated[str, Form(max_length=2000)]
Adjuster = Annotated[Staff, Depends(require(Permission.ADJUST))]
Freezer = Annotated[Staff, Depends(require(Permission.FREEZE))]
Merger = Annotated[Staff, Depends(require(Permission.MERGE))]


def _act(
    request: Request,
    staff: Staff,
    member_id: int,
    action: Callable[[], str],
    form: Mapping[str, str],
) -> Response:
    """Run ``action`` (which returns the success message); on a refusal, show why."""
    try:
        message = action()
    except TallyError as error:
        return member_page(
            request,
            staff,
            member_id,
            status=error.status,
            flashes=[error_flash(request, error)],
            form=form,
        )
    flash(request, "success", message)
    return redirect(request, member_url(member_id))


def _confirm(
    request: Request,
    staff: Staff,
    member_id: int,
    amount: int,
    form: Mapping[str, str],
    nonce: str,
    mismatch: ValidationFailed | None,
) -> Response:
    """Ask for the amount again (the same form, its nonce kept); after a mismatch, say so."""
    context = {
        "confirm": adjustment_views.confirmation(request, staff, amount),
        "nonce": once.checked(request, staff, once.ADJUST_FORM, nonce).token,
    }
    if mismatch is None:
        return member_page(request, staff, member_id, form=form, context=context)
    return member_page(
        request,
        staff,
        member_id,
        status=mismatch.status,
        flashes=[error_flash(request, mismatch)],
        form=form,
        context=context,
    )


@router.post("/members/{member_id}/adjust")
def adjust(
    request: Request,
    staff: Adjuster,
    member_id: MemberId,
    points: Text = "",
    reason: Text = "",
    nonce: Text = "",
    confirm: Text = "",
    expires: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Credit (positive) or debit (negative) points, with a reason, once per form: within the
    role's limit at once, above it as a request for approval; a large amount only once the
    operator has re-typed it, an impossible one never."""
    form = {"points": points, "reason": reason, "expires": expires}
    try:
        submitted = once.checked(request, staff, once.ADJUST_FORM, nonce)
        amount = forms.points(points)
        cleaned = forms.reason(reason)
        last_day = forms.expiry(expires, amount)
        limits = adjustment_views.limits_for(request, staff)
        limits.route(amount)
        if limits.needs_confirmation(amount):
            try:
                confirmed = forms.confirmed(confirm, amount)
            except ValidationFailed as mismatch:
                return _confirm(request, staff, member_id, amount, form, nonce, mismatch)
            if not confirmed:
                return _confirm(request, staff, member_id, amount, form, nonce, None)
        outcome = commands.adjust(
            database(request),
            request.app.state.programme,
            actor=adjustment_views.actor_of(request, staff),
            member_id=member_id,
            points=amount,
            reason=cleaned,
            expires_at=adjustment_views.valid_through(request, last_day),
            form=submitted,
            now=now(request),
            policy=policy(request),
        )
    except TallyError as error:
        return member_page(
            request,
            staff,
            member_id,
            status=error.status,
            flashes=[adjustment_views.refusal(request, error)],
            form=form,
        )
    if outcome is None:
        flash(request, "info", N_("This adjustment was already made; it was not repeated."))
    elif outcome.request is not None:
        flash(
            request,
            "success",
            N_(
                "Above your limit of %(limit)s points: sent for approval as request "
                "#%(number)s. Nothing is posted until another staff member approves it."
            ),
            limit=f"{outcome.request.role_limit:,}",
            number=outcome.request.id,
        )
    else:
        flash(request, "success", N_("The balance was adjusted."))
    return redirect(request, member_url(member_id))


@router.post("/members/{member_id}/freeze")
def freeze(request: Request, staff: Freezer, member_id: MemberId, reason: Text = "") -> Response:
    """Stop the member from earning and spending."""

    def action() -> str:
        why = forms.reason(reason)
        audit = trail(request, staff, Action.FREEZE, member_id, reason=why)
        commands.freeze(database(request), member_id, why, utcnow(), audit)
        return N_("The member is frozen.")

    return _act(request, staff, member_id, action, {"freeze_reason": reason})


@router.post("/members/{member_id}/unfreeze")
def unfreeze(request: Request, staff: Freezer, member_id: MemberId) -> Response:
    """Let the member earn and spend again."""

    def action() -> str:
        audit = trail(request, staff, Action.UNFREEZE, member_id)
        commands.unfreeze(database(request), member_id, utcnow(), audit)
        return N_("The member is active again.")

    return _act(request, staff, member_id, action, {})


@router.post("/members/{member_id}/merge")
def merge(
    request: Request, staff: Merger, member_id: MemberId, other: Text = "", reason: Text = ""
) -> Response:
    """Fold another member (identities, lots, holds, balance) into this one."""

    def action() -> str:
        merged_id, why = forms.member_id(other), forms.reason(reason)
        commands.merge(
            database(request),
            request.app.state.programme,
            survivor_id=member_id,
            merged_id=merged_id,
            staff_id=staff.id,
            reason=why,
            now=utcnow(),
            audit=trail(request, staff, Action.MERGE, member_id, merged=merged_id, reason=why),
        )
        return N_("The other member was merged into this one.")

    return _act(request, staff, member_id, action, {"merge_member": other, "merge_reason": reason})


@router.post("/members/{member_id}/merges/{merge_id}/reverse")
def reverse_merge(
    request: Request,
    staff: Merger,
    member_id: MemberId,
    merge_id: Annotated[int, Path(gt=0, le=2**62)],
) -> Response:
    """Undo a merge: the merged member gets back its identities and remaining value."""

    def action() -> str:
        commands.unmerge(
            database(request),
            request.app.state.programme,
            member_id=member_id,
            merge_id=merge_id,
            staff_id=staff.id,
            now=utcnow(),
            audit=trail(request, staff, Action.UNMERGE, member_id, merge=merge_id),
        )
        return N_("The merge was reversed.")

    return _act(request, staff, member_id, action, {})
