"""``tally coupons``: coupon templates and issuing their codes as staff (``tally jobs coupons``,
the monthly allowances, is in :mod:`tally.cli.jobs`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.cli.common import emit, fail, open_database
from tally.coupons import domain
from tally.coupons import service as coupons
from tally.coupons.models import CouponTemplate
from tally.errors import Forbidden, NotFound, TallyError
from tally.kit.clock import utcnow
from tally.staff import service as staff
from tally.staff.models import StaffUser

app = typer.Typer(help="Coupon templates: list, show, issue codes as staff.", no_args_is_help=True)


def _issuer(session: Session, username: str) -> coupons.Issuer:
    """Staff ``username``, who may issue coupons (the ``campaigns`` permission)."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.is_active:
        raise NotFound(f"No active staff member {username}.")
    if not staff.can(user.role, staff.Permission.CAMPAIGNS):
        raise Forbidden(f"Staff member {username} ({user.role.value}) may not issue coupons.")
    return coupons.Issuer(staff_id=user.id)


def _as_dict(row: CouponTemplate) -> dict[str, Any]:
    return {
        "code": row.code,
        "kind": row.kind.value,
        "value": row.value,
        "currency": row.currency,
        "cap": row.cap,
        "min_spend": row.min_spend,
        "scope": {"categories": row.categories, "skus": row.skus, "partners": row.partners},
        "limit": {"total": row.total_limit, "per_member": row.per_member_limit},
        "valid": {"from": row.valid_from, "until": row.valid_until},
        "shared_code": row.shared_code,
        "names": row.names,
        "issued": row.issued,
        "redeemed": row.redeemed,
        "rolled_back": row.rolled_back,
    }


@app.command("list")
def list_templates() -> None:
    """Print every coupon template as JSON, newest first, with its counts."""
    with open_database() as db, db.read() as session:
        emit([_as_dict(row) for row in coupons.templates(session)])


@app.command("show")
def show(code: Annotated[str, typer.Argument(help="The template's code.")]) -> None:
    """Print one template and its use: codes issued, in wallets, uses in force, rolled back."""
    try:
        with open_database() as db, db.read() as session:
            row = coupons.template(session, code)
            use = coupons.usage(session, row)
            emit(
                {
                    **_as_dict(row),
                    "use": {
                        "codes": use.issued,
                        "in_wallets": use.in_wallets,
                        "redeemed": use.redeemed,
                        "rolled_back": use.rolled_back,
                    },
                }
            )
    except TallyError as error:
        fail(error)


@app.command("issue")
def issue(
    code: Annotated[str, typer.Argument(help="The template's code.")],
    staff_user: Annotated[
        str, typer.Option("--staff", help="Username of the staff member issuing (recorded).")
    ],
    member: Annotated[
        list[int] | None,
        typer.Option("--member", help="A member to issue a code to (repeat for more)."),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            min=1,
            max=domain.MAX_ISSUE,
            help="Codes per member, or (without --member) unassigned codes to generate.",
        ),
    ] = None,
) -> None:
    """Issue codes of a template in one transaction: into members' wallets, or unassigned codes
    to hand out (printed, formatted ``XXXX-XXXX-XXXX``)."""
    try:
        with open_database() as db, db.write() as session:
            row = coupons.template(session, code)
            issued = coupons.issue(
                session,
                row,
                _issuer(session, staff_user),
                utcnow(),
                member_ids=member or [],
                count=count,
            )
            emit(
                {
                    "template": row.code,
                    "issued": len(issued),
                    "codes": [
                        {"code": domain.formatted(text), "member_id": member_id}
                        for _id, text, member_id in issued
                    ],
                }
            )
    except TallyError as error:
        fail(error)
