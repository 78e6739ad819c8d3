"""``GET /v1/members/{id}/status``: tier, growth, paid memberships and benefits in one read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import Reader, programme, reader
from tally.api.paths import MemberId
from tally.flows.status import MemberStatus, member_status
from tally.kit.clock import utcnow
from tally.partners.service import Scope

router = APIRouter(tags=["status"])


class TierStatus(BaseModel):
    code: str
    names: dict[str, str] = Field(description='Display names by language: {"zh-CN": …, "en": …}.')
    index: int = Field(description="Position on the ladder; 0 is the first tier.")
    since: datetime | None
    earn_multiplier_bp: int = Field(description="Earn multiplier in basis points: 15000 = 1.5x.")
    theme: str
    mall_exclusive: bool


class GrowthStatus(BaseModel):
    qualifying: int = Field(description="Growth value counted by the tier model now.")
    lifetime: int
    window_start: datetime | None
    next_tier: str | None
    to_next: int | None = Field(description="Growth still needed to reach next_tier.")
    to_keep: int = Field(description="Growth still needed to keep the tier at evaluation.")
    downgrade_at: datetime | None = Field(description="When a pending downgrade applies.")


class MembershipStatus(BaseModel):
    id: str
    plan: str
    names: dict[str, str] | None
    period_end: datetime
    cancel_at_period_end: bool


class StatusResponse(BaseModel):
    member_id: int
    tier: TierStatus
    growth: GrowthStatus
    memberships: list[MembershipStatus]
    family: dict[str, Any] | None = Field(
        description="The member's family (members, mode, this month's spend), if any."
    )
    benefits: list[dict[str, Any]] = Field(
        description="The tier's and the paid plans' benefits together; coupon counts add up."
    )


def status_response(status: MemberStatus) -> StatusResponse:
    """The API's view of a member's status."""
    standing = status.standing
    return StatusResponse(
        member_id=status.member_id,
        tier=TierStatus(
            code=standing.tier.code,
            names=standing.tier.names.model_dump(by_alias=True),
            index=standing.tier_index,
            since=standing.since,
            earn_multiplier_bp=status.earn_multiplier_bp,
            theme=status.theme,
            mall_exclusive=standing.tier.flags.mall_exclusive,
        ),
        growth=GrowthStatus(
            qualifying=standing.growth,
            lifetime=standing.lifetime_growth,
            window_start=standing.window_start,
            next_tier=standing.next_tier.code if standing.next_tier else None,
            to_next=standing.to_next,
            to_keep=standing.to_keep,
            downgrade_at=standing.downgrade_at,
        ),
        memberships=[
            MembershipStatus(
                id=str(plan.membership_id),
                plan=plan.plan_code,
                names=plan.plan.names.model_dump(by_alias=True) if plan.plan else None,
                period_end=plan.period_end,
                cancel_at_period_end=plan.cancel_at_period_end,
            )
            for plan in status.memberships
        ],
        family=status.family.as_dict() if status.family is not None else None,
        benefits=[benefit.model_dump() for benefit in status.benefits],
    )


@router.get("/v1/members/{member_id}/status", response_model=StatusResponse)
async def get_status(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> StatusResponse:
    """The member's tier, growth and progress, paid memberships in force and stacked benefits.
    A partner sees the memberships of the plans it sells; the family only the operator's
    channels (the benefits stack every plan in force either way)."""

    def work(session: Session, caller: Caller) -> StatusResponse:
        found = programme(read.request, session)
        status = member_status(session, member_id, utcnow(), found)
        seen = replace(
            status,
            memberships=[
                plan for plan in status.memberships if access.sells(caller, found, plan.plan_code)
            ],
            family=status.family if access.sees_families(caller) else None,
        )
        return status_response(seen)

    return await read.run(work)
