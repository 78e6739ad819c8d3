"""Consents: what a member lets each partner see of its profile, and who collected it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictBool, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, mutation, reader
from tally.api.paths import MemberId
from tally.api.schemas import Strict
from tally.kit.clock import utcnow
from tally.partners.domain import Scope
from tally.privacy import service as privacy
from tally.privacy.domain import ConsentAct, api_channel

router = APIRouter(prefix="/v1/members", tags=["consents"])


class ConsentChange(Strict):
    """A member's act, recorded on its behalf by one of the operator's channels."""

    partner: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The code of the partner the member shares its profile with (or stops)."
    )
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="`profile` (see the member's personal data) or `marketing`."
    )
    granted: StrictBool = Field(description="`true` grants, `false` withdraws.")


class ConsentState(BaseModel):
    partner: str
    purpose: str
    granted: bool
    since: datetime = Field(description="When the act that set this state was recorded.")
    channel: str


class ConsentEvent(BaseModel):
    partner: str
    purpose: str
    granted: bool
    channel: str = Field(
        description="Where the act was done: `member_pages` (the member), `api:<partner code>` "
        "(an operator channel on its behalf), `console` (staff, told by the member at the "
        "service desk or on the phone) or `merge` (carried from a member merged into this one)."
    )
    created_at: datetime


class CollectionRecord(BaseModel):
    partner: str
    method: str = Field(description="`enrol` (it enrolled the member) or `link`.")
    namespace: str
    created_at: datetime


class MemberConsents(BaseModel):
    """A member's consents as the caller may see them: a partner its own, the operator's
    channels everyone's."""

    member_id: int
    consents: list[ConsentState] = Field(description="The standing state of each consent.")
    history: list[ConsentEvent] = Field(description="Every grant and withdrawal, oldest first.")
    collections: list[CollectionRecord] = Field(
        description="Which partners collected the member's data, and how."
    )


def consents_model(found: privacy.Consents) -> MemberConsents:
    """The API's form of a member's consents."""

    def code(partner_id: int) -> str:
        return found.partners[partner_id].code

    def state(act: ConsentAct) -> ConsentState:
        return ConsentState(
            partner=code(act.partner_id),
            purpose=act.purpose.value,
            granted=act.is_granted,
            since=act.created_at,
            channel=act.channel,
        )

    return MemberConsents(
        member_id=found.member_id,
        consents=[state(act) for act in found.standing],
        history=[
            ConsentEvent(
                partner=code(act.partner_id),
                purpose=act.purpose.value,
                granted=act.is_granted,
                channel=act.channel,
                created_at=act.created_at,
            )
            for act in found.history
        ],
        collections=[
            CollectionRecord(
                partner=code(item.partner_id),
                method=item.method.value,
                namespace=item.namespace,
                created_at=item.created_at,
            )
            for item in found.collections
        ],
    )


@router.get("/{member_id}/consents", response_model=MemberConsents)
async def get_consents(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> MemberConsents:
    """The member's consents, their history and who collected its data: a partner sees its
    own, the operator's channels everyone's."""

    def work(session: Session, caller: Caller) -> MemberConsents:
        return consents_model(privacy.consents(session, member_id, caller))

    return await read.run(work)


@router.post(
    "/{member_id}/consents",
    response_model=MemberConsents,
    status_code=201,
    response_description="The act was recorded.",
    responses={
        200: {"model": MemberConsents, "description": "Already so: nothing recorded."},
        409: {"description": "member_merged: the member was merged into another"},
        422: {
            "description": "unknown_partner, unknown_purpose: no such partner or purpose; "
            "validation_error: a malformed body"
        },
    },
)
async def change_consent(
    member_id: MemberId,
    payload: ConsentChange,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Grant or withdraw a consent on the member's behalf (the operator's channels only),
    recorded with the channel `api:<partner code>`; repeating the standing state records
    nothing and answers 200."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "record consents on a member's behalf")
        changed = privacy.record(
            session,
            member_id,
            payload.partner,
            payload.purpose,
            grant=payload.granted,
            channel=api_channel(write.holder.partner_code),
            actor=f"partner:{write.holder.partner_id}",
            now=utcnow(),
            address=write.request.client.host if write.request.client else None,
        )
        found = privacy.consents(session, member_id, write.holder)
        return (201 if changed else 200), consents_model(found)

    return await write.run(work)
