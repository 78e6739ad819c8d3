"""Family accounts: the operator's channels act on a member's behalf (naming the acting
member) and read a family; any partner with ``redeem`` spends a family's points at checkout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, mutation, policy, programme, reader
from tally.api.paths import FamilyId, MemberId
from tally.api.schemas import MemberRef, Points, Reference, Strict
from tally.errors import NotFound
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.flows import family_spend
from tally.kit.clock import utcnow
from tally.partners.service import Scope

router = APIRouter(prefix="/v1", tags=["families"])
# (session, family_id, acting_member_id, member_id, now): a member answers, leaves, is removed.
MemberAction = Callable[[Session, int, int, int, datetime], None]
Limit = Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)]
ON_BEHALF = "act in families on a member's behalf"
READ_FAMILIES = "read families"


class Acting(Strict):
    acting_member_id: MemberRef = Field(description="The member on whose behalf the app acts.")


class FamilyCreate(Acting):
    mode: FamilyMode = FamilyMode.SHARE


class InvitationCreate(Acting):
    member_id: MemberRef = Field(description="The member invited.")


class MemberLimit(Strict):
    member_id: MemberRef
    monthly_limit: Limit | None = Field(description="Points per month; null: the default.")


class FamilySettings(Acting):
    mode: FamilyMode | None = None
    limits: list[MemberLimit] = Field(default_factory=list, max_length=50)


class FamilySpendRequest(Strict):
    member_id: MemberRef = Field(description="The member spending (the owner, or a member).")
    points: Points
    reference: Reference


class FamilyMemberOut(BaseModel):
    member_id: int
    role: str
    joined_at: datetime
    available: int
    monthly_limit: int | None
    limit_is_default: bool
    spent_this_month: int
    remaining_this_month: int | None


class InvitationOut(BaseModel):
    member_id: int
    invited_by: int
    created_at: datetime


class FamilyOut(BaseModel):
    id: int
    owner_id: int
    mode: str
    status: str
    created_at: datetime
    dissolved_at: datetime | None
    max_members: int
    seats_taken: int
    month: str
    pooled_available: int
    members: list[FamilyMemberOut]
    invitations: list[InvitationOut]


class Drawn(BaseModel):
    member_id: int
    points: int


class FamilySpent(BaseModel):
    id: str
    transaction_id: str
    family_id: int
    spent_by: int
    points: int
    month: str
    drawn: list[Drawn]
    remaining_this_month: int | None


def _out(view: families.FamilyView) -> FamilyOut:
    return FamilyOut(
        id=view.id,
        owner_id=view.owner_id,
        mode=view.mode.value,
        status=view.status.value,
        created_at=view.created_at,
        dissolved_at=view.dissolved_at,
        max_members=view.max_members,
        seats_taken=view.seats_taken,
        month=view.month,
        pooled_available=view.pooled_available,
        members=[
            FamilyMemberOut(
                member_id=line.member_id,
                role=line.role.value,
                joined_at=line.joined_at,
                available=line.available,
                monthly_limit=line.monthly_limit,
                limit_is_default=line.limit_is_default,
                spent_this_month=line.spent_this_month,
                remaining_this_month=line.remaining_this_month,
            )
            for line in view.members
        ],
        invitations=[
            InvitationOut(
                member_id=item.member_id, invited_by=item.invited_by, created_at=item.created_at
            )
            for item in view.invitations
        ],
    )


def _view(write: Mutation, session: Session, family_id: int) -> FamilyOut:
    now = utcnow()
    return _out(families.view(session, family_id, now, programme(write.request, session)))


@router.post("/families", response_model=FamilyOut, status_code=201)
async def create_family(
    payload: FamilyCreate, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """The acting member creates a family and owns it (a member is in one family at most)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, ON_BEHALF)
        family_id = families.create(session, payload.acting_member_id, payload.mode, utcnow())
        return 201, _view(write, session, family_id)

    return await write.run(work)


@router.get("/families/{family_id}", response_model=FamilyOut)
async def get_family(
    family_id: FamilyId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> FamilyOut:
    """Members, roles, status, mode, limits, this month's spend and the pooled total."""

    def work(session: Session, caller: Caller) -> FamilyOut:
        access.require_operator_channel(caller, READ_FAMILIES)
        return _out(families.view(session, family_id, utcnow(), programme(read.request, session)))

    return await read.run(work)


@router.get("/members/{member_id}/family", response_model=FamilyOut)
async def get_member_family(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> FamilyOut:
    """The member's family; 404 ``not_found`` when the member is in none."""

    def work(session: Session, caller: Caller) -> FamilyOut:
        access.require_operator_channel(caller, READ_FAMILIES)
        found = families.family_of(
            session, member_id, utcnow(), programme=programme(read.request, session)
        )
        if found is None:
            raise NotFound(f"Member {member_id} is not in a family.", member_id=member_id)
        return _out(found)

    return await read.run(work)


async def _settings(family_id: int, payload: FamilySettings, write: Mutation) -> Response:
    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, ON_BEHALF)
        families.change_settings(
            session,
            family_id,
            payload.acting_member_id,
            payload.mode,
            {item.member_id: item.monthly_limit for item in payload.limits},
            utcnow(),
        )
        return 200, _view(write, session, family_id)

    return await write.run(work)


@router.patch("/families/{family_id}", response_model=FamilyOut)
async def patch_family(
    family_id: FamilyId,
    payload: FamilySettings,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """The owner changes the mode and/or members' monthly limits."""
    return await _settings(family_id, payload, write)


@router.post("/families/{family_id}/settings", response_model=FamilyOut)
async def post_family_settings(
    family_id: FamilyId,
    payload: FamilySettings,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """The same as ``PATCH /v1/families/{family_id}``, for clients that only POST."""
    return await _settings(family_id, payload, write)


@router.post("/families/{family_id}/invitations", response_model=FamilyOut, status_code=201)
async def invite(
    family_id: FamilyId,
    payload: InvitationCreate,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """The owner invites a member (it takes a seat until answered or withdrawn)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, ON_BEHALF)
        families.invite(
            session,
            family_id,
            payload.acting_member_id,
            payload.member_id,
            utcnow(),
            programme(write.request, session).family,
        )
        return 201, _view(write, session, family_id)

    return await write.run(work)


def _member_route(path: str, name: str, operation: MemberAction, summary: str) -> None:
    """``POST /v1/families/{family_id}/<path>``: the acting member does ``operation`` to
    ``member_id`` (answer an invitation, leave, be removed); the answer is the family."""

    async def endpoint(
        family_id: FamilyId,
        member_id: MemberId,
        payload: Acting,
        write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
    ) -> Response:
        def work(session: Session) -> tuple[int, BaseModel]:
            access.require_operator_channel(write.holder, ON_BEHALF)
            operation(session, family_id, payload.acting_member_id, member_id, utcnow())
            return 200, _view(write, session, family_id)

        return await write.run(work)

    endpoint.__doc__ = summary
    router.add_api_route(
        f"/families/{{family_id}}/{path}",
        endpoint,
        methods=["POST"],
        response_model=FamilyOut,
        name=name,
    )


for _action, _operation, _summary in (
    ("accept", families.accept, "The invitee (the acting member) joins the family."),
    ("decline", families.decline, "The invitee (the acting member) declines."),
    ("withdraw", families.withdraw, "The owner (the acting member) withdraws the invitation."),
):
    _member_route(
        f"invitations/{{member_id}}/{_action}", f"{_action}_invitation", _operation, _summary
    )
_member_route(
    "members/{member_id}/leave",
    "leave",
    families.leave,
    "A member (the acting member) leaves; it keeps its own points.",
)
_member_route(
    "members/{member_id}/remove",
    "remove",
    families.remove,
    "The owner (the acting member) removes a member; it keeps its own points.",
)


@router.post("/families/{family_id}/dissolve", response_model=FamilyOut)
async def dissolve(
    family_id: FamilyId,
    payload: Acting,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """The owner (the acting member) dissolves the family; everyone keeps their own points."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, ON_BEHALF)
        families.dissolve(session, family_id, payload.acting_member_id, utcnow())
        return 200, _view(write, session, family_id)

    return await write.run(work)


@router.post("/families/{family_id}/redemptions", response_model=FamilySpent, status_code=201)
async def spend(
    family_id: FamilyId,
    payload: FamilySpendRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.REDEEM))],
) -> Response:
    """Spend the family's points with the calling partner on ``member_id``'s behalf: in pool
    mode the owner spends its own then the members' points; in share mode a member spends the
    owner's, within its monthly limit. The partner must be tied to the spending member
    (docs/security.md)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now, found = utcnow(), programme(write.request, session)
        access_service.require_relationship(
            session, write.holder, payload.member_id, found, now, "spend family points for"
        )
        result = family_spend.spend(
            session,
            write.origin,
            family_id,
            payload.member_id,
            payload.points,
            payload.reference,
            now,
            policy(write.request),
            found,
        )
        return 201, FamilySpent(
            id=str(result.entry_id),
            transaction_id=str(result.entry_id),
            family_id=result.family_id,
            spent_by=result.spent_by,
            points=result.points,
            month=result.month,
            drawn=[Drawn(member_id=m, points=p) for m, p in result.drawn],
            remaining_this_month=result.remaining_this_month,
        )

    return await write.run(work)
