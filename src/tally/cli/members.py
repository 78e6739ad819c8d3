"""``tally member``: operator actions on members."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from tally.access.domain import declared_namespace
from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import NotFound, TallyError
from tally.flows import enrolment, referrals
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.programme import runtime
from tally.staff.models import StaffUser

app = typer.Typer(help="Enrol, look up, freeze and merge members.", no_args_is_help=True)
StaffOption = Annotated[str, typer.Option("--staff", help="Username of the staff member acting.")]
NamespaceArgument = Annotated[
    str, typer.Argument(help="A namespace the programme declares, e.g. phone.")
]
ExternalIdArgument = Annotated[str, typer.Argument(help="The id in that namespace.")]


def _staff_id(session: object, username: str) -> int:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))  # type: ignore[attr-defined]
    if user is None:
        raise NotFound(f"No staff member {username}.")
    return int(user.id)


@app.command("enrol")
def enrol(
    namespace: NamespaceArgument,
    external_id: ExternalIdArgument,
    referral_code: Annotated[
        str | None,
        typer.Option("--referral-code", help="The code of the member who referred this one."),
    ] = None,
) -> None:
    """Enrol a member for an identity, or print the member that already has it.

    The namespace must be one the programme declares (the operator may use every one). With
    --referral-code the new member is linked to its referrer; an identity that has a member
    already, a member's own code or a frozen or merged referrer is refused.
    """
    try:
        with open_database() as db, db.write() as session:
            declared_namespace(runtime.effective(session, get_settings()), namespace)
            identity = members.Identity(namespace, external_id)
            if referral_code is None:
                member_id, created = enrolment.enrol(session, identity, {}, utcnow())
            else:
                member_id, created = referrals.enrol_referred(
                    session, identity, {}, referral_code, utcnow(), actor="system"
                )
        emit({"member_id": member_id, "created": created})
    except TallyError as error:
        fail(error)


@app.command("link")
def link(
    member_id: Annotated[int, typer.Argument(help="Tally member id.")],
    namespace: NamespaceArgument,
    external_id: ExternalIdArgument,
) -> None:
    """Attach another identity to a member, in a namespace the programme declares."""
    try:
        with open_database() as db, db.write() as session:
            declared_namespace(runtime.effective(session, get_settings()), namespace)
            members.link(session, member_id, members.Identity(namespace, external_id), utcnow())
            view = members.view(session, member_id)
        emit(
            {
                "id": view.id,
                "identities": [f"{item.namespace}:{item.external_id}" for item in view.identities],
            }
        )
    except TallyError as error:
        fail(error)


@app.command("show")
def show(member_id: Annotated[int, typer.Argument(help="Tally member id.")]) -> None:
    """Print a member with its identities."""
    try:
        with open_database() as db, db.read() as session:
            view = members.view(session, member_id)
        emit(
            {
                "id": view.id,
                "status": view.status.value,
                "merged_into_id": view.merged_into_id,
                "identities": [f"{item.namespace}:{item.external_id}" for item in view.identities],
            }
        )
    except TallyError as error:
        fail(error)


@app.command("merge")
def merge(
    survivor: Annotated[int, typer.Argument(help="The member that remains.")],
    merged: Annotated[int, typer.Argument(help="The member folded into it.")],
    staff: StaffOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the record).")],
) -> None:
    """Merge two members: identities, points, holds and history move to the survivor."""
    try:
        with open_database() as db, db.write() as session:
            record = enrolment.merge(
                session,
                survivor,
                merged,
                _staff_id(session, staff),
                reason,
                utcnow(),
                runtime.effective(session, get_settings()),
            )
            emit(
                {
                    "merge_id": record.id,
                    "survivor_id": survivor,
                    "merged_id": merged,
                    "moved": record.moved,
                }
            )
    except TallyError as error:
        fail(error)


@app.command("unmerge")
def unmerge(
    merge_id: Annotated[int, typer.Argument(help="The merge record's id.")], staff: StaffOption
) -> None:
    """Reverse a merge."""
    try:
        with open_database() as db, db.write() as session:
            record = enrolment.unmerge(
                session,
                merge_id,
                _staff_id(session, staff),
                utcnow(),
                runtime.effective(session, get_settings()),
            )
            emit({"merge_id": record.id, "reversed_at": record.reversed_at})
    except TallyError as error:
        fail(error)


@app.command("freeze")
def freeze(
    member_id: Annotated[int, typer.Argument(help="Tally member id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
) -> None:
    """Freeze a member: no earning or spending until unfrozen."""
    try:
        with open_database() as db, db.write() as session:
            members.freeze(session, member_id, reason, utcnow())
        emit({"member_id": member_id, "status": "frozen"})
    except TallyError as error:
        fail(error)


@app.command("unfreeze")
def unfreeze(member_id: Annotated[int, typer.Argument(help="Tally member id.")]) -> None:
    """Unfreeze a member."""
    try:
        with open_database() as db, db.write() as session:
            members.unfreeze(session, member_id, utcnow())
        emit({"member_id": member_id, "status": "active"})
    except TallyError as error:
        fail(error)
