"""``GET /v1/partners/me``: the calling partner and its accounts (see docs/accounts.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from tally.access.domain import caller_of
from tally.accounts import service as accounts
from tally.accounts.domain import PartnerTotals
from tally.api.credentials import authenticated, bearer_token
from tally.api.deps import database, in_executor, programme
from tally.partners import service as partners
from tally.partners.models import Partner

router = APIRouter(prefix="/v1/partners", tags=["partners"])


class AccountBalance(BaseModel):
    """One of the partner's accounts, with its balance as the ledger keeps it."""

    kind: str = Field(description="`issued` or `accepted`.", examples=["issued"])
    code: str = Field(
        description="The account as postings name it (`partner:<id>:issued`, "
        "`partner:<id>:redeemed`).",
        examples=["partner:5:issued"],
    )
    unit: str = Field(description="What the balance counts: `points`.", examples=["points"])
    balance: int = Field(
        description="The sum of the account's postings: negative for `issued`, a contra "
        "account (every earn posts −n to it), positive for `accepted`.",
        examples=[-1500],
    )


class PartnerMe(BaseModel):
    """The calling partner and its accounts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "code": "SHOP",
                    "name": "Select Mall",
                    "is_active": True,
                    "operator_channel": False,
                    "created_at": "2026-05-01T10:00:00+08:00",
                    "accounts": [
                        {
                            "kind": "issued",
                            "code": "partner:5:issued",
                            "unit": "points",
                            "balance": -1500,
                        },
                        {
                            "kind": "accepted",
                            "code": "partner:5:redeemed",
                            "unit": "points",
                            "balance": 300,
                        },
                    ],
                    "issued": 1500,
                    "accepted": 300,
                    "net": 1200,
                }
            ]
        }
    )

    id: int
    code: str
    name: str
    is_active: bool
    operator_channel: bool = Field(description="Whether it is one of the operator's channels.")
    created_at: datetime
    accounts: list[AccountBalance]
    issued: int = Field(
        description="Points the partner issued to members, net of reversed earns (positive)."
    )
    accepted: int = Field(
        description="Points members spent with the partner, net of refunds (positive)."
    )
    net: int = Field(description="`issued` − `accepted`: points issued beyond those accepted.")


def partner_me(partner: Partner, totals: PartnerTotals, operator: bool) -> PartnerMe:
    return PartnerMe(
        id=partner.id,
        code=partner.code,
        name=partner.name,
        is_active=partner.is_active,
        operator_channel=operator,
        created_at=partner.created_at,
        accounts=[
            AccountBalance(
                kind=item.account.kind.value,
                code=item.account.code,
                unit=item.account.unit,
                balance=item.balance,
            )
            for item in totals.accounts
        ],
        issued=totals.issued,
        accepted=totals.accepted,
        net=totals.net,
    )


@router.get("/me", response_model=PartnerMe)
async def get_partner_me(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> PartnerMe:
    """The partner holding the API key, with its accounts and totals. Any of its keys may ask,
    whatever its scopes; a partner sees only itself."""
    token = bearer_token(authorization)

    def blocking() -> PartnerMe:
        with database(request).read() as session:
            holder = partners.authenticate(session, token, request.app.state.secret)
            authenticated(request)
            caller = caller_of(holder, programme(request, session))
            partner = partners.partner_by_code(session, holder.partner_code)
            totals = accounts.of_partner(session, partner.id)
            return partner_me(partner, totals, caller.is_operator_channel)

    return await in_executor(request, blocking)
