"""Members: enrol, look up, identities, status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.api import schemas, views
from tally.api.deps import Mutation, Reader, mutation, reader
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.partners.service import Scope

router = APIRouter(prefix="/v1/members", tags=["members"])
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
MemberId = Annotated[int, Path(gt=0, le=2**62, description="The member's Tally id.")]
MAX_ID = 2**62


@router.post(
    "",
    response_model=schemas.Member,
    status_code=201,
    responses={200: {"model": schemas.Member, "description": "The identity's existing member."}},
)
async def create_member(
    payload: schemas.MemberCreate, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """Enrol a member for an external identity, or return the member that already has it."""

    def work(session: Session) -> tuple[int, BaseModel]:
        member_id, created = enrolment.enrol(
            session,
            members.Identity(payload.external_id.namespace, payload.external_id.id),
            payload.profile.model_dump(exclude_none=True),
            utcnow(),
        )
        return (201 if created else 200), views.member(session, member_id)

    return await write.run(work)


@router.get("/lookup", response_model=schemas.Member)
async def lookup_member(
    namespace: Annotated[str, Query(min_length=1, max_length=64, pattern=PRINTABLE)],
    id: Annotated[str, Query(min_length=1, max_length=191, pattern=PRINTABLE)],
    read: Annotated[Reader, Depends(reader(Scope.READ))],
) -> schemas.Member:
    """Find a member by any of its identities."""
    return await read.run(
        lambda session, _holder: views.member(session, members.lookup(session, namespace, id))
    )


@router.get("/{member_id}", response_model=schemas.Member)
async def get_member(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
) -> schemas.Member:
    """One member with its identities."""
    return await read.run(lambda session, _holder: views.member(session, member_id))


@router.post("/{member_id}/identities", response_model=schemas.Member)
async def link_identity(
    member_id: MemberId,
    payload: schemas.IdentityLink,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Attach another identity to a member."""

    def work(session: Session) -> tuple[int, BaseModel]:
        members.link(session, member_id, members.Identity(payload.namespace, payload.id), utcnow())
        return 200, views.member(session, member_id)

    return await write.run(work)


@router.post("/{member_id}/identities/unlink", response_model=schemas.Member)
async def unlink_identity(
    member_id: MemberId,
    payload: schemas.IdentityLink,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Detach an identity (a member keeps at least one)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        members.unlink(session, member_id, members.Identity(payload.namespace, payload.id))
        return 200, views.member(session, member_id)

    return await write.run(work)


@router.post("/{member_id}/freeze", response_model=schemas.Member)
async def freeze_member(
    member_id: MemberId,
    payload: schemas.FreezeRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))],
) -> Response:
    """Stop a member from earning and spending (fraud, dispute)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        members.freeze(session, member_id, payload.reason, utcnow())
        return 200, views.member(session, member_id)

    return await write.run(work)


@router.post("/{member_id}/unfreeze", response_model=schemas.Member)
async def unfreeze_member(
    member_id: MemberId, write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))]
) -> Response:
    """Let a frozen member earn and spend again."""

    def work(session: Session) -> tuple[int, BaseModel]:
        members.unfreeze(session, member_id, utcnow())
        return 200, views.member(session, member_id)

    return await write.run(work)
