"""The console's staff accounts (administrators): create, change role, deactivate, reactivate;
never oneself, and never the last active administrator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import TallyError, ValidationFailed
from tally.flows import management
from tally.kit.clock import utcnow
from tally.staff import service as staff_service
from tally.staff.models import StaffRole, StaffUser
from tally.staff.service import Permission
from tally.web.console import adjustment_views, once
from tally.web.console.auth import Staff, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import gettext, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, now

router = APIRouter()
PAGE_URL = "/console/staff"
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
StaffId = Annotated[int, Path(gt=0, le=2**62)]
Text = Annotated[str, Form(max_length=200)]
ROLES = tuple(role.value for role in StaffRole)


def _role(text: str) -> StaffRole:
    try:
        return StaffRole(text)
    except ValueError:
        raise ValidationFailed("Choose a role.", field="role") from None


def staff_page(
    request: Request,
    staff: Staff,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """Every staff account, and the form that creates one."""
    with database(request).read() as session:
        accounts = staff_service.users(session)
    context = {
        "accounts": accounts,
        "roles": ROLES,
        "form": {"username": "", "display_name": "", "role": "support", **(form or {})},
        "nonce": once.issue(request, "staff"),
        "page_url": PAGE_URL,
        "section": "staff",
    }
    return page(request, "console/staff.html", staff, context, status=status, flashes=flashes)


@router.get("/staff")
def list_staff(request: Request, staff: Manager) -> Response:
    """Every staff account with its role and status."""
    return staff_page(request, staff)


@router.post("/staff")
def create(
    request: Request,
    staff: Manager,
    username: Text = "",
    display_name: Text = "",
    role: Text = "",
    password: Text = "",
    nonce: Text = "",
) -> Response:
    """Add a staff account with a first password (at least 10 characters), once per form."""

    def work(session: Session) -> tuple[StaffUser, dict[str, object]]:
        user = management.create_staff(
            session,
            adjustment_views.actor_of(request, staff),
            username=username,
            password=password,
            role=_role(role),
            display_name=display_name,
            now=now(request),
        )
        return user, {"staff": user.username}

    try:
        form = once.checked(request, staff, "staff", nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        form_values = {"username": username, "display_name": display_name, "role": role}
        return staff_page(
            request,
            staff,
            status=error.status,
            flashes=[_refusal(request, error)],
            form=form_values,
        )
    if isinstance(outcome, once.Done):
        message = N_("This form was already sent: staff account %(username)s exists.")
        flash(request, "info", message, username=str(outcome.answer.get("staff", "?")))
        return redirect(request, PAGE_URL)
    flash(request, "success", N_("Staff account %(username)s created."), username=outcome.username)
    return redirect(request, PAGE_URL)


@router.post("/staff/{staff_id}/role")
def change_role(request: Request, staff: Manager, staff_id: StaffId, role: Text = "") -> Response:
    """Give another staff member another role."""
    try:
        with database(request).write() as session:
            actor = adjustment_views.actor_of(request, staff)
            user = management.change_staff_role(session, actor, staff_id, _role(role), utcnow())
    except TallyError as error:
        return staff_page(
            request, staff, status=error.status, flashes=[error_flash(request, error)]
        )
    flash(request, "success", N_("%(username)s's role was changed."), username=user.username)
    return redirect(request, PAGE_URL)


def _set_active(request: Request, staff: Staff, staff_id: int, active: bool) -> Response:
    try:
        with database(request).write() as session:
            actor = adjustment_views.actor_of(request, staff)
            user = management.set_staff_active(session, actor, staff_id, active, utcnow())
    except TallyError as error:
        return staff_page(
            request, staff, status=error.status, flashes=[error_flash(request, error)]
        )
    message = (
        N_("%(username)s may sign in again.")
        if active
        else N_("%(username)s is deactivated and signed out everywhere.")
    )
    flash(request, "success", message, username=user.username)
    return redirect(request, PAGE_URL)


@router.post("/staff/{staff_id}/deactivate")
def deactivate(request: Request, staff: Manager, staff_id: StaffId) -> Response:
    """Deactivate another staff member: signed out at once, cannot sign in."""
    return _set_active(request, staff, staff_id, active=False)


@router.post("/staff/{staff_id}/activate")
def activate(request: Request, staff: Manager, staff_id: StaffId) -> Response:
    """Let a deactivated staff member sign in again."""
    return _set_active(request, staff, staff_id, active=True)


def _refusal(request: Request, error: TallyError) -> Flash:
    """Why a new account was refused; a username already in use is said so."""
    if error.code == "conflict":
        return Flash("error", gettext(request, N_("That username is taken.")))
    return error_flash(request, error)
