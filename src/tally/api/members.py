"""Members: enrol, look up, identities, status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.api import member_codes, schemas, views
from tally.api.deps import (
    Mutation,
    Reader,
    database,
    in_executor,
    mutation,
    policy,
    programme,
    reader,
)
from tally.api.member_codes import CODE_DESCRIPTION
from tally.api.paths import MemberId
from tally.errors import UnknownReferralCode, ValidationFailed
from tally.flows import enrolment, enrolment_events, referrals
from tally.kit.clock import utcnow
from tally.member_codes import service as code_lookups
from tally.members import service as members
from tally.partners.service import Scope

router = APIRouter(prefix="/v1/members", tags=["members"])
# The text rule (schemas.CleanText) as the OpenAPI document states it.
TEXT = {"pattern": schemas.TEXT_PATTERN}
MAX_ID = 2**62


def _member(write: Mutation, session: Session, member_id: int) -> schemas.Member:
    """The member resource as the writing partner may see it (docs/security.md)."""
    return views.member(session, member_id, write.holder, programme(write.request, session))


@router.post(
    "",
    response_model=schemas.Member,
    status_code=201,
    responses={200: {"model": schemas.Member, "description": "The identity's existing member."}},
)
async def create_member(
    payload: schemas.MemberCreate, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """Enrol a member for an external identity, or return the member that already has it.
    With a ``referral_code``, the new member is linked to its referrer (`referral_refused`
    for an identity that has a member, a member's own code, or a frozen or merged referrer)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = utcnow()
        namespace = payload.external_id.namespace
        access.require_namespace(write.holder, programme(write.request, session), namespace)
        identity = members.Identity(payload.external_id.namespace, payload.external_id.id)
        profile = payload.profile.model_dump(exclude_none=True)
        partner_id = write.holder.partner_id
        if payload.referral_code is None:
            member_id, created = enrolment.enrol(
                session, identity, profile, now, partner_id=partner_id
            )
        else:
            member_id, created = referrals.enrol_referred(
                session,
                identity,
                profile,
                payload.referral_code,
                now,
                actor=f"partner:{partner_id}",
                partner_id=partner_id,
            )
        if created:
            enrolment_events.raise_enrolled(
                session, member_id, now, policy(write.request), programme(write.request, session)
            )
        return (201 if created else 200), _member(write, session, member_id)

    try:
        return await write.run(work)
    except UnknownReferralCode:  # counted, in a transaction of its own, against probing
        await in_executor(write.request, lambda: _count_unknown_code(write))
        raise


def _count_unknown_code(write: Mutation) -> None:
    with database(write.request).write() as session:
        code_lookups.count_miss(session, write.holder.partner_id, utcnow())


@router.get(
    "/lookup",
    response_model=schemas.Member,
    responses={429: {"description": "`rate_limited`: too many unknown member codes"}},
)
async def lookup_member(
    read: Annotated[Reader, Depends(reader(Scope.READ))],
    namespace: Annotated[
        Annotated[str, schemas.CleanText] | None,
        Query(min_length=1, max_length=64, json_schema_extra=TEXT),
    ] = None,
    id: Annotated[
        Annotated[str, schemas.CleanText] | None,
        Query(min_length=1, max_length=191, json_schema_extra=TEXT),
    ] = None,
    code: Annotated[
        str | None, Query(max_length=64, pattern=r"^[0-9 -]+$", description=CODE_DESCRIPTION)
    ] = None,
) -> schemas.Member:
    """Find a member by any of its identities (in a namespace the caller may use), or by the
    member code it shows at a checkout."""
    if code is not None and namespace is None and id is None:
        return await member_codes.lookup(read, code)
    if code is not None or namespace is None or id is None:
        raise ValidationFailed("Give either namespace and id, or code.", field="code")

    def work(session: Session, caller: Caller) -> schemas.Member:
        access.require_namespace(caller, programme(read.request, session), namespace)
        return views.member(
            session,
            members.lookup(session, namespace, id),
            caller,
            programme(read.request, session),
        )

    return await read.run(work)


@router.get("/{member_id}", response_model=schemas.Member)
async def get_member(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
) -> schemas.Member:
    """One member with its identities."""
    return await read.run(
        lambda session, caller: views.member(
            session, member_id, caller, programme(read.request, session)
        )
    )


@router.post("/{member_id}/identities", response_model=schemas.Member)
async def link_identity(
    member_id: MemberId,
    payload: schemas.IdentityLink,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Attach another identity to a member the calling partner is tied to (docs/security.md)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = utcnow()
        found = programme(write.request, session)
        access.require_namespace(write.holder, found, payload.namespace)
        access_service.require_relationship(
            session, write.holder, member_id, found, now, "link an identity to"
        )
        identity = members.Identity(payload.namespace, payload.id)
        enrolment.link(session, member_id, identity, write.holder.partner_id, now)
        return 200, _member(write, session, member_id)

    return await write.run(work)


@router.post("/{member_id}/identities/unlink", response_model=schemas.Member)
async def unlink_identity(
    member_id: MemberId,
    payload: schemas.IdentityLink,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Detach an identity (a member keeps at least one): a partner detaches identities in the
    namespaces it owns; shared ones only the operator's channels."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_unlink(write.holder, programme(write.request, session), payload.namespace)
        members.unlink(session, member_id, members.Identity(payload.namespace, payload.id))
        return 200, _member(write, session, member_id)

    return await write.run(work)


@router.post("/{member_id}/freeze", response_model=schemas.Member)
async def freeze_member(
    member_id: MemberId,
    payload: schemas.FreezeRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))],
) -> Response:
    """Stop a member from earning and spending (fraud, dispute)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "freeze members")
        members.freeze(session, member_id, payload.reason, utcnow())
        return 200, _member(write, session, member_id)

    return await write.run(work)


@router.post("/{member_id}/unfreeze", response_model=schemas.Member)
async def unfreeze_member(
    member_id: MemberId, write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))]
) -> Response:
    """Let a frozen member earn and spend again."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "unfreeze members")
        members.unfreeze(session, member_id, utcnow())
        return 200, _member(write, session, member_id)

    return await write.run(work)
