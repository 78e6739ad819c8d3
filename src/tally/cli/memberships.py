"""``tally membership``: look at paid memberships (``tally jobs memberships`` is in
:mod:`tally.cli.jobs`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from sqlalchemy import select

from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import Forbidden, NotFound, TallyError
from tally.kit.clock import utcnow
from tally.memberships import service as memberships
from tally.programme import runtime
from tally.programme.domain import Money
from tally.staff import service as staff
from tally.staff.models import StaffUser

app = typer.Typer(
    help="Look at members' paid memberships; cancel or refund one as staff.", no_args_is_help=True
)
StaffOption = Annotated[
    str, typer.Option("--staff", help="Username of the staff member acting (recorded).")
]


def _membership_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Membership {value} does not exist.") from None


def _staff_actor(session: Any, username: str) -> memberships.Actor:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.is_active:
        raise NotFound(f"No active staff member {username}.")
    if not staff.can(user.role, staff.Permission.ADJUST):
        raise Forbidden(f"Staff member {username} ({user.role.value}) may not change memberships.")
    return memberships.Actor(staff_id=user.id)


def _money(value: Any) -> dict[str, Any]:
    return {"minor_units": value.minor_units, "currency": value.currency, "display": str(value)}


def _as_dict(view: memberships.MembershipView) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "member_id": view.member_id,
        "plan": view.plan_code,
        "plan_names": view.plan_names,
        "status": view.status.value,
        "amount_due": _money(view.price),
        "term": view.term,
        "current_period_start": view.current_period_start,
        "current_period_end": view.current_period_end,
        "cancel_at_period_end": view.cancel_at_period_end,
        "created_at": view.created_at,
        "ended_at": view.ended_at,
        "payments": [
            {
                "reference": item.reference,
                "partner_id": item.partner_id,
                "amount": _money(item.amount),
                "refunded": _money(item.refunded),
                "paid_at": item.paid_at,
                "period_start": item.period_start,
                "period_end": item.period_end,
                "revoked_at": item.revoked_at,
            }
            for item in view.payments
        ],
    }


@app.command("list")
def list_memberships(member_id: Annotated[int, typer.Argument(help="Tally member id.")]) -> None:
    """Print a member's memberships as JSON, newest first, with the status in effect now."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings)
            views = memberships.list_for_member(session, member_id, utcnow(), programme)
        emit([_as_dict(view) for view in views])
    except TallyError as error:
        fail(error)


@app.command("show")
def show(membership_id: Annotated[str, typer.Argument(help="The membership id.")]) -> None:
    """Print one membership with its payments and its history of changes."""
    settings = get_settings()
    try:
        target = _membership_id(membership_id)
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings)
            view = memberships.view(session, target, utcnow(), programme)
            events = memberships.history(session, target)
        emit(
            {
                **_as_dict(view),
                "history": [
                    {
                        "kind": event.kind.value,
                        "at": event.created_at,
                        "partner_id": event.partner_id,
                        "staff_id": event.staff_id,
                        "amount": (
                            {"minor_units": event.minor_units, "currency": event.currency}
                            if event.minor_units is not None
                            else None
                        ),
                        "status": [event.status_before, event.status_after],
                        "period_end": [event.period_end_before, event.period_end_after],
                        "details": event.details,
                    }
                    for event in events
                ],
            }
        )
    except TallyError as error:
        fail(error)


@app.command("cancel")
def cancel(
    membership_id: Annotated[str, typer.Argument(help="The membership id.")],
    staff_user: StaffOption,
) -> None:
    """Cancel a membership at period end (it stays active until then)."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.write() as session:
            actor = _staff_actor(session, staff_user)
            row = memberships.cancel(session, actor, _membership_id(membership_id), utcnow())
            view = memberships.view(session, row.id, utcnow(), runtime.effective(session, settings))
        emit(_as_dict(view))
    except TallyError as error:
        fail(error)


@app.command("refund")
def refund(
    membership_id: Annotated[str, typer.Argument(help="The membership id.")],
    payment: Annotated[str, typer.Option("--payment", help="The payment's reference.")],
    staff_user: StaffOption,
    minor_units: Annotated[
        int | None,
        typer.Option(
            "--minor-units", min=1, help="How much, in minor units (fen); default all that is left."
        ),
    ] = None,
) -> None:
    """Refund all or part of a payment (the latest in full revokes the period it bought)."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.write() as session:
            actor = _staff_actor(session, staff_user)
            target = _membership_id(membership_id)
            amount = None
            if minor_units is not None:
                currency = memberships.get(session, target).currency
                amount = Money(minor_units, currency)
            row, _payment = memberships.refund(session, actor, target, payment, amount, utcnow())
            view = memberships.view(session, row.id, utcnow(), runtime.effective(session, settings))
        emit(_as_dict(view))
    except TallyError as error:
        fail(error)
