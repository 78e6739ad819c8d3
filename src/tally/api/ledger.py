"""The ledger API: balances, earn, redeem, holds, transfers, reversals, history."""

from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.access import domain as access
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.adjustments import service as adjustment_requests
from tally.api import schemas, views
from tally.api.deps import Mutation, Reader, clock_now, mutation, policy, programme, reader
from tally.api.fastlane import UUID, by_member, lane
from tally.api.paths import AdjustmentRequestId, HoldId, MemberId, TransactionId
from tally.errors import NotFound
from tally.flows import earning, staff_adjustments
from tally.flows.earning import Earning
from tally.flows.spending import Capture, Void
from tally.kit.clock import utcnow
from tally.kit.pagination import decode_cursor
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import Line, Order, hold_order
from tally.partners.service import Scope
from tally.programme.runtime import ProgrammeCache

router = APIRouter(tags=["ledger"])


def _policy(write: Mutation) -> Policy:
    return policy(write.request)


def _zone(write: Mutation) -> ZoneInfo:
    cache: ProgrammeCache = write.request.app.state.programme
    return cache.zone


@router.get("/v1/members/{member_id}/balance", response_model=schemas.Balance)
async def get_balance(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
) -> schemas.Balance:
    """Spendable points, held points, and what expires on which date (programme time zone)."""
    return await read.run(
        lambda session, _holder: views.balance(
            session, member_id, utcnow(), programme(read.request, session).zone
        )
    )


def earn_order(member_id: int, payload: schemas.EarnRequest) -> Earning:
    """The earn a request asks for (its origin is set to the calling partner)."""
    lines = tuple(Line(line.points, line.expires_at, line.reason) for line in payload.lines or ())
    order = Order(
        EntryKind.EARN,
        Origin(),
        member_id,
        payload.points,
        payload.reference,
        payload.expires_at,
        lines=lines,
    )
    return Earning(order, payload.growth, payload.apply_tier_multiplier)


def redeem_order(member_id: int, payload: schemas.RedeemRequest) -> Order:
    """The redeem a request asks for (its origin is set to the calling partner)."""
    return Order(EntryKind.REDEEM, Origin(), member_id, payload.points, payload.reference)


@router.post("/v1/members/{member_id}/earn", response_model=schemas.Posted, status_code=201)
async def earn(
    member_id: MemberId,
    payload: schemas.EarnRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.EARN))],
) -> Response:
    """Credit points issued by the calling partner, with the growth value they carry (default:
    the points; ``0`` for points that do not count towards tiers). With
    ``apply_tier_multiplier`` the member's tier multiplier applies to the points credited."""
    return await write.post(earn_order(member_id, payload))


@router.post("/v1/members/{member_id}/redeem", response_model=schemas.Posted, status_code=201)
async def redeem(
    member_id: MemberId,
    payload: schemas.RedeemRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.REDEEM))],
) -> Response:
    """Spend points with the calling partner, oldest-expiring first; a partner spends only
    the points of a member it is tied to (docs/security.md)."""
    return await write.post(redeem_order(member_id, payload))


def hold_write(member_id: int, payload: schemas.HoldRequest) -> Order:
    """The hold a request asks for (its origin: set from the key when it posts)."""
    return hold_order(
        Origin(), member_id, payload.points, payload.reference, payload.expires_in_seconds
    )


@router.post("/v1/members/{member_id}/holds", response_model=schemas.HoldPosted, status_code=201)
async def create_hold(
    member_id: MemberId,
    payload: schemas.HoldRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.REDEEM))],
) -> Response:
    """Reserve points (checkout, bid) until captured, voided or timed out; a partner holds
    only the points of a member it is tied to (docs/security.md)."""
    return await write.post(hold_write(member_id, payload))


def capture_write(hold_id: str, payload: schemas.CaptureRequest | None) -> Capture:
    """The write of a capture of ``hold_id``: all of the hold, or the points ``payload`` names."""
    return Capture(Origin(), hold_id, payload.points if payload else None)


def _capture_lane(_request: Request, hold_id: str, payload: schemas.CaptureRequest) -> Capture:
    return capture_write(hold_id, payload)


# Ordinary earns, redeems, holds and captures skip FastAPI's routing and dependency solving
# (tally.api.fastlane).
LANES = (
    lane("/v1/members/{member_id}/earn", schemas.EarnRequest, Scope.EARN, by_member(earn_order)),
    lane(
        "/v1/members/{member_id}/redeem",
        schemas.RedeemRequest,
        Scope.REDEEM,
        by_member(redeem_order),
    ),
    lane("/v1/members/{member_id}/holds", schemas.HoldRequest, Scope.REDEEM, by_member(hold_write)),
    lane(
        "/v1/holds/{hold_id}/capture",
        schemas.CaptureRequest,
        Scope.REDEEM,
        _capture_lane,
        parameter=UUID,
    ),
)


def _hold_id(value: str) -> uuid.UUID:
    parsed = views.parse_uuid(value)
    if parsed is None:
        raise NotFound(f"Hold {value} does not exist.")
    return parsed


@router.post("/v1/holds/{hold_id}/capture", response_model=schemas.HoldPosted)
async def capture_hold(
    hold_id: HoldId,
    write: Annotated[Mutation, Depends(mutation(Scope.REDEEM))],
    payload: schemas.CaptureRequest | None = None,
) -> Response:
    """Spend all of a hold, or part of it and release the rest (the partner's own holds)."""
    return await write.post(capture_write(hold_id, payload))


@router.post("/v1/holds/{hold_id}/void", response_model=schemas.HoldPosted)
async def void_hold(
    hold_id: HoldId, write: Annotated[Mutation, Depends(mutation(Scope.REDEEM))]
) -> Response:
    """Release a hold: every held point goes back to the member (the partner's own holds)."""
    return await write.post(Void(Origin(), hold_id))


@router.get("/v1/holds/{hold_id}", response_model=schemas.Hold)
async def get_hold(
    hold_id: HoldId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
) -> schemas.Hold:
    """One hold of the calling partner (the operator's channels see every partner's)."""

    def work(session: Session, caller: Caller) -> schemas.Hold:
        found = access_service.hold_of(session, caller, hold_id, acting=False)
        return views.hold(found, utcnow())

    return await read.run(work)


@router.post("/v1/transfers", response_model=schemas.TransferPosted, status_code=201)
async def transfer(
    payload: schemas.TransferRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.TRANSFER))],
) -> Response:
    """Give points from one member to another (a gift); they keep their expiry. The member's
    own act: only through the operator's channels, with the ``transfer`` scope."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "move points between members")
        now = utcnow()
        result = ledger.transfer(
            session,
            write.origin,
            payload.from_member_id,
            payload.to_member_id,
            payload.points,
            payload.reference,
            now,
            _policy(write),
        )
        base = views.posted(session, result, now, _zone(write))
        return 201, schemas.TransferPosted(
            **base.model_dump(),
            to_balance=views.balance(session, payload.to_member_id, now, _zone(write)),
        )

    return await write.run(work)


@router.post(
    "/v1/transactions/{transaction_id}/reverse", response_model=schemas.Posted, status_code=201
)
async def reverse(
    transaction_id: TransactionId, write: Annotated[Mutation, Depends(mutation(None))]
) -> Response:
    """Reverse one of the partner's own transactions: an earn (claw back what is left, report
    the shortfall; needs ``earn``), a redemption or a capture (needs ``redeem``)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = utcnow()
        original = access_service.transaction_to_reverse(session, write.holder, transaction_id)
        result = earning.reverse(session, write.origin, original.id, now, _policy(write))
        return 201, views.posted(session, result, now, _zone(write))

    return await write.run(work)


@router.get("/v1/members/{member_id}/transactions", response_model=schemas.TransactionPage)
async def list_transactions(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.TransactionPage:
    """The member's transactions made by the calling partner (by every partner for the
    operator's channels), newest first; pass ``next_cursor`` back for the next page."""
    before = decode_cursor(cursor) if cursor else None
    return await read.run(
        lambda session, caller: views.transactions(
            session, member_id, before, limit, partner_id=access.seen_partner(caller)
        )
    )


ADJUSTMENT_REQUEST_FILED = {
    "model": schemas.AdjustmentRequest,
    "description": "Above the API's limit (`staff.api_adjustment_limit` in the programme): "
    "nothing is posted; the adjustment is a request a staff approver decides on in the "
    "console before `expires_at`. Poll it at `Location`.",
    "headers": {
        "Location": {
            "description": "The request: `/v1/adjustment-requests/{id}`.",
            "schema": {"type": "string"},
            "required": True,
        }
    },
}


@router.post(
    "/v1/members/{member_id}/adjustments",
    response_model=schemas.Posted,
    status_code=201,
    responses={202: ADJUSTMENT_REQUEST_FILED},
)
async def adjust(
    member_id: MemberId,
    payload: schemas.AdjustRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))],
) -> Response:
    """An operator back-office correction (positive or negative) with a reason (the
    operator's channels only), under the programme's guardrails: posted at once (201) up to
    `staff.api_adjustment_limit` points, above it filed as a request for a staff approver
    (202); never more than `staff.max_adjustment` (`adjustment_too_large`)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "adjust points")
        now = clock_now(write.request)
        cache: ProgrammeCache = write.request.app.state.programme
        outcome = staff_adjustments.adjust(
            session,
            key_actor(write),
            member_id,
            payload.points,
            payload.reason,
            programme=programme(write.request, session),
            version=cache.version,
            policy=_policy(write),
            now=now,
            expires_at=payload.expires_at,
        )
        if outcome.request is not None:
            return 202, views.adjustment_request(session, outcome.request, now)
        assert outcome.posted is not None
        return 201, views.posted(session, outcome.posted, now, _zone(write))

    answer = await write.run(work)
    if answer.status_code == 202:  # the first answer or its replay: the same Location
        filed = orjson.loads(bytes(answer.body))
        answer.headers["Location"] = f"/v1/adjustment-requests/{filed['id']}"
    return answer


def key_actor(write: Mutation) -> staff_adjustments.KeyActor:
    """The calling key as the adjustment guardrails (and the audit log) name it."""
    client = write.request.client
    return staff_adjustments.KeyActor(
        partner_id=write.holder.partner_id,
        key_id=write.holder.key_id,
        key_prefix=write.token.partition(".")[0],
        address=client.host if client is not None else None,
    )


@router.get(
    "/v1/adjustment-requests/{adjustment_request_id}", response_model=schemas.AdjustmentRequest
)
async def get_adjustment_request(
    adjustment_request_id: AdjustmentRequestId,
    read: Annotated[Reader, Depends(reader(Scope.ADMIN))],
) -> schemas.AdjustmentRequest:
    """An adjustment request the calling partner's keys filed, as it stands now: pending,
    approved (with the posted transaction), rejected, withdrawn or expired. Another partner's
    request, or one filed by staff, is `404 not_found`."""

    def work(session: Session, caller: Caller) -> schemas.AdjustmentRequest:
        found = adjustment_requests.of_partner(session, adjustment_request_id, caller.partner_id)
        return views.adjustment_request(session, found, clock_now(read.request))

    return await read.run(work)
