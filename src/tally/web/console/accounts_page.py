"""The console's accounts (finance, auditors, administrators): every partner's accounts, the
system's, and the programme's outstanding liability — unspent points and what they were worth
when issued. Read only; every figure is an aggregate the database computes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from tally.accounts import service as accounts
from tally.accounts.domain import AccountKind
from tally.api.deps import database
from tally.ledger.liability import liability
from tally.partners import service as partners
from tally.staff.service import Permission
from tally.web.console.auth import Staff, require
from tally.web.console.pages import page
from tally.web.i18n import N_
from tally.web.sessions import now

router = APIRouter()
Reader = Annotated[Staff, Depends(require(Permission.ACCOUNTS))]

#: How the system's accounts read on the page.
SYSTEM_KINDS = {
    AccountKind.EXPIRED.value: N_("Expired points"),
    AccountKind.ADJUSTMENTS.value: N_("Operator adjustments"),
    AccountKind.BREAKAGE.value: N_("Breakage"),
}


@dataclass(frozen=True, slots=True)
class PartnerLine:
    """A partner's accounts: points it issued (positive), points members spent with it."""

    code: str
    name: str
    is_active: bool
    issued_account: str
    accepted_account: str
    issued: int
    accepted: int
    net: int


@dataclass(frozen=True, slots=True)
class SystemLine:
    code: str
    kind: str
    balance: int


@router.get("/accounts")
def accounts_page(request: Request, staff: Reader) -> Response:
    """Every partner's and the system's accounts, and the outstanding liability."""
    moment = now(request)
    with database(request).read() as session:
        totals = accounts.of_partners(session)
        lines = []
        for partner in partners.partners(session):
            found = totals.get(partner.id)
            held = found.accounts if found else []
            codes = {item.account.kind: item.account.code for item in held}
            lines.append(
                PartnerLine(
                    code=partner.code,
                    name=partner.name,
                    is_active=partner.is_active,
                    issued_account=codes.get(AccountKind.ISSUED, ""),
                    accepted_account=codes.get(AccountKind.ACCEPTED, ""),
                    issued=found.issued if found else 0,
                    accepted=found.accepted if found else 0,
                    net=found.net if found else 0,
                )
            )
        system = [
            SystemLine(item.account.code, item.account.kind.value, item.balance)
            for item in accounts.of_system(session)
        ]
        owed = liability(session, moment)
    context = {
        "partners": lines,
        "system": system,
        "liability": owed,
        "as_of": moment,
        "system_kinds": SYSTEM_KINDS,
        "section": "accounts",
    }
    return page(request, "console/accounts.html", staff, context)
