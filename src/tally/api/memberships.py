"""Paid memberships: subscribe, payment callbacks, cancel and resume, refunds, reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field, StrictInt, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, mutation, programme, reader
from tally.api.paths import MemberId, MembershipId
from tally.api.schemas import Reference, Strict
from tally.errors import NotFound
from tally.kit.clock import utcnow
from tally.memberships import service as memberships
from tally.memberships.models import MembershipPayment
from tally.partners.service import Scope
from tally.programme.domain import Money

router = APIRouter(tags=["memberships"])
MAX_MINOR_UNITS = 10**15


# --- Request and response models ------------------------------------------------------------


class Amount(Strict):
    """Money: integer minor units (fen for CNY) and an ISO 4217 code; never a float."""

    minor_units: Annotated[StrictInt, Field(gt=0, le=MAX_MINOR_UNITS)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

    @property
    def money(self) -> Money:
        return Money(self.minor_units, self.currency)


class SubscribeRequest(Strict):
    plan: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class PaymentRequest(Strict):
    reference: Reference
    amount: Amount
    paid_at: AwareDatetime | None = Field(
        default=None, description="When the partner took the money; now when absent."
    )


class RefundRequest(Strict):
    payment_reference: Reference
    amount: Amount | None = Field(
        default=None, description="What to give back; all that is left of the payment if absent."
    )


class MoneyOut(BaseModel):
    minor_units: int
    currency: str
    display: str = Field(description='For people: "88.00 CNY".')


class PlanOut(BaseModel):
    code: str
    names: dict[str, str] | None = Field(
        description="zh-CN and en names; null if the plan has left the programme."
    )


class Period(BaseModel):
    start: datetime
    end: datetime


class PaymentOut(BaseModel):
    reference: str
    partner_id: int
    amount: MoneyOut
    refunded: MoneyOut
    paid_at: datetime
    period: Period
    revoked_at: datetime | None = Field(description="When a refund revoked the period it bought.")


class MembershipOut(BaseModel):
    id: str
    member_id: int
    plan: PlanOut
    status: str = Field(description="pending, active, expired, refunded or abandoned (as of now).")
    amount_due: MoneyOut = Field(description="The price of one term, fixed when subscribing.")
    term: str
    current_period: Period | None
    cancel_at_period_end: bool
    created_at: datetime
    ended_at: datetime | None
    payments: list[PaymentOut]


class PaymentResult(BaseModel):
    membership: MembershipOut
    payment: PaymentOut


class MembershipList(BaseModel):
    items: list[MembershipOut]


class EventOut(BaseModel):
    kind: str = Field(
        description="subscribed, activated, renewed, restarted, cancelled, resumed, refunded, "
        "expired or abandoned."
    )
    at: datetime
    partner_id: int | None
    staff_id: int | None = Field(description="Neither partner nor staff: the system (a job).")
    amount: MoneyOut | None
    status_before: str | None
    status_after: str
    period_end_before: datetime | None
    period_end_after: datetime | None
    details: dict[str, Any] | None


class EventList(BaseModel):
    items: list[EventOut]


def _money(value: Money) -> MoneyOut:
    return MoneyOut(minor_units=value.minor_units, currency=value.currency, display=str(value))


def _payment(item: memberships.PaymentView) -> PaymentOut:
    return PaymentOut(
        reference=item.reference,
        partner_id=item.partner_id,
        amount=_money(item.amount),
        refunded=_money(item.refunded),
        paid_at=item.paid_at,
        period=Period(start=item.period_start, end=item.period_end),
        revoked_at=item.revoked_at,
    )


def _out(view: memberships.MembershipView) -> MembershipOut:
    period = None
    if view.current_period_start is not None and view.current_period_end is not None:
        period = Period(start=view.current_period_start, end=view.current_period_end)
    return MembershipOut(
        id=str(view.id),
        member_id=view.member_id,
        plan=PlanOut(code=view.plan_code, names=view.plan_names),
        status=view.status.value,
        amount_due=_money(view.price),
        term=view.term,
        current_period=period,
        cancel_at_period_end=view.cancel_at_period_end,
        created_at=view.created_at,
        ended_at=view.ended_at,
        payments=[_payment(item) for item in view.payments],
    )


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Membership {value} does not exist.") from None


def _actor(write: Mutation) -> memberships.Actor:
    return memberships.Actor(partner_id=write.holder.partner_id)


def _managed(write: Mutation, session: Session, membership_id: str) -> uuid.UUID:
    """Membership ``membership_id``, which the caller manages: it sells the plan, or it is one
    of the operator's channels."""
    target = _id(membership_id)
    found = programme(write.request, session)
    access_service.require_membership_seller(session, write.holder, found, target)
    return target


def _view(write: Mutation, session: Session, membership_id: uuid.UUID) -> MembershipOut:
    found = programme(write.request, session)
    return _out(memberships.view(session, membership_id, utcnow(), found))


def _find(view: MembershipOut, payment: MembershipPayment) -> PaymentOut:
    return next(
        item
        for item in view.payments
        if item.reference == payment.reference and item.partner_id == payment.partner_id
    )


MEMBERSHIP_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "not_found: unknown member or membership"},
    409: {"description": "member_frozen, membership_not_active, duplicate_reference, conflict"},
    422: {"description": "validation_error, payment_mismatch, refund_exceeds_payment"},
}


# --- Endpoints ------------------------------------------------------------------------------


@router.post(
    "/v1/members/{member_id}/memberships",
    response_model=MembershipOut,
    status_code=201,
    responses={
        200: {"model": MembershipOut, "description": "The member's existing membership."},
        403: {
            "description": "not_eligible: growth value or tier below the plan's; forbidden: "
            "the caller does not sell the plan"
        },
        **MEMBERSHIP_ERRORS,
    },
)
async def subscribe(
    member_id: MemberId,
    payload: SubscribeRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Subscribe a member to a plan: a pending membership with the amount to pay (201), or the
    member's pending-or-active membership of that plan (200)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = utcnow()
        found = programme(write.request, session)
        access.require_seller_to_subscribe(write.holder, found, payload.plan)
        row, created = memberships.subscribe(
            session, _actor(write), member_id, payload.plan, found, now
        )
        return (201 if created else 200), _view(write, session, row.id)

    return await write.run(work)


@router.post(
    "/v1/memberships/{membership_id}/payments",
    response_model=PaymentResult,
    status_code=201,
    responses={
        200: {"model": PaymentResult, "description": "This reference was already confirmed."},
        **MEMBERSHIP_ERRORS,
    },
)
async def confirm_payment(
    membership_id: MembershipId,
    payload: PaymentRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """The partner that took the money confirms a payment of one term: it activates a pending
    membership, renews an active one (from the current period end), resumes one cancelled at
    period end, or starts a new period for an ended one."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = utcnow()
        target = _managed(write, session, membership_id)
        row, payment, created = memberships.pay(
            session,
            _actor(write),
            target,
            payload.reference,
            payload.amount.money,
            payload.paid_at,
            programme(write.request, session),
            now,
        )
        view = _view(write, session, row.id)
        status = 201 if created else 200
        return status, PaymentResult(membership=view, payment=_find(view, payment))

    return await write.run(work)


@router.post(
    "/v1/memberships/{membership_id}/cancel",
    response_model=MembershipOut,
    responses=MEMBERSHIP_ERRORS,
)
async def cancel(
    membership_id: MembershipId, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """Cancel at period end: the membership stays active until then, then expires."""

    def work(session: Session) -> tuple[int, BaseModel]:
        target = _managed(write, session, membership_id)
        row = memberships.cancel(session, _actor(write), target, utcnow())
        return 200, _view(write, session, row.id)

    return await write.run(work)


@router.post(
    "/v1/memberships/{membership_id}/resume",
    response_model=MembershipOut,
    responses=MEMBERSHIP_ERRORS,
)
async def resume(
    membership_id: MembershipId, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """Withdraw a cancellation before the period ends."""

    def work(session: Session) -> tuple[int, BaseModel]:
        target = _managed(write, session, membership_id)
        row = memberships.resume(session, _actor(write), target, utcnow())
        return 200, _view(write, session, row.id)

    return await write.run(work)


@router.post(
    "/v1/memberships/{membership_id}/refunds",
    response_model=PaymentResult,
    status_code=201,
    responses=MEMBERSHIP_ERRORS,
)
async def refund(
    membership_id: MembershipId,
    payload: RefundRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))],
) -> Response:
    """Refund all or part of a payment. Refunding the latest payment in full revokes the period
    it bought (the membership ends now if nothing paid for is left)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        row, payment = memberships.refund(
            session,
            _actor(write),
            _managed(write, session, membership_id),
            payload.payment_reference,
            payload.amount.money if payload.amount else None,
            utcnow(),
        )
        view = _view(write, session, row.id)
        return 201, PaymentResult(membership=view, payment=_find(view, payment))

    return await write.run(work)


@router.get(
    "/v1/memberships/{membership_id}",
    response_model=MembershipOut,
    responses={404: {"description": "not_found"}},
)
async def get_membership(
    membership_id: MembershipId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> MembershipOut:
    """One membership with its payments; the status is the one in effect now."""

    def work(session: Session, caller: Caller) -> MembershipOut:
        found = programme(read.request, session)
        target = _id(membership_id)
        access_service.require_membership_seller(session, caller, found, target)
        return _out(memberships.view(session, target, utcnow(), found))

    return await read.run(work)


@router.get(
    "/v1/members/{member_id}/memberships",
    response_model=MembershipList,
    responses={404: {"description": "not_found"}},
)
async def list_memberships(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> MembershipList:
    """A member's memberships of the plans the caller sells (every plan for the operator's
    channels), newest first."""

    def work(session: Session, caller: Caller) -> MembershipList:
        found = programme(read.request, session)
        items = memberships.list_for_member(session, member_id, utcnow(), found)
        return MembershipList(
            items=[_out(item) for item in items if access.sells(caller, found, item.plan_code)]
        )

    return await read.run(work)


@router.get(
    "/v1/memberships/{membership_id}/events",
    response_model=EventList,
    responses={404: {"description": "not_found"}},
)
async def membership_events(
    membership_id: MembershipId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> EventList:
    """Every change of a membership, oldest first: what, when, who and the money involved."""

    def work(session: Session, caller: Caller) -> EventList:
        target = _id(membership_id)
        found = programme(read.request, session)
        access_service.require_membership_seller(session, caller, found, target)
        items = []
        for event in memberships.history(session, target):
            money = None
            if event.minor_units is not None and event.currency is not None:
                money = _money(Money(event.minor_units, event.currency))
            items.append(
                EventOut(
                    kind=event.kind.value,
                    at=event.created_at,
                    partner_id=event.partner_id,
                    staff_id=event.staff_id,
                    amount=money,
                    status_before=event.status_before,
                    status_after=event.status_after,
                    period_end_before=event.period_end_before,
                    period_end_after=event.period_end_after,
                    details=event.details,
                )
            )
        return EventList(items=items)

    return await read.run(work)
