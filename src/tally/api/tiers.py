"""Growth value and tiers: a member's standing, growth history, tier history, adjustments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StrictInt, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.api.deps import Mutation, Reader, mutation, programme, reader
from tally.api.paths import MemberId
from tally.api.schemas import MAX_POINTS, Strict
from tally.kit.clock import utcnow
from tally.kit.pagination import decode_cursor, encode_cursor
from tally.partners.service import Scope
from tally.programme.domain import Tier
from tally.tiers import service as tiers
from tally.tiers.models import GrowthEntry as GrowthRow
from tally.tiers.models import TierChange as TierChangeRow

router = APIRouter(prefix="/v1/members", tags=["tiers"])


class TierRef(BaseModel):
    code: str
    names: dict[str, str]
    threshold: int


class TierStanding(BaseModel):
    """Where a member stands on the ladder now."""

    member_id: int
    tier: TierRef
    tier_index: int = Field(description="0 is the first tier.")
    growth: int = Field(description="Qualifying growth value now (the tier model's window).")
    lifetime_growth: int
    since: datetime | None = Field(description="When the member reached this tier.")
    next_tier: TierRef | None
    to_next: int | None = Field(description="Growth value still needed for the next tier.")
    to_keep: int = Field(description="Growth value still needed to keep the tier (0: safe).")
    downgrade_at: datetime | None = Field(description="A pending downgrade's moment (grace).")
    window_start: datetime | None = Field(description="Where the counted window starts.")
    earn_multiplier_bp: int = Field(description="The tier's earn multiplier in basis points.")
    benefits: list[dict[str, Any]]
    flags: dict[str, Any]


class GrowthEntry(BaseModel):
    id: int
    kind: str
    points: int
    counted_at: datetime
    transaction_id: str | None
    reverses_id: int | None
    origin_member_id: int
    partner_id: int | None
    staff_id: int | None
    reason: str | None
    created_at: datetime


class GrowthPage(BaseModel):
    items: list[GrowthEntry]
    next_cursor: str | None


class TierChange(BaseModel):
    id: int
    from_code: str | None
    to_code: str
    reason: str
    growth: int
    downgrade_at: datetime | None
    programme_version: int | None
    changed_at: datetime


class TierChangePage(BaseModel):
    items: list[TierChange]
    next_cursor: str | None


class GrowthAdjustRequest(Strict):
    points: Annotated[StrictInt, Field(ge=-MAX_POINTS, le=MAX_POINTS)] = Field(
        description="Signed growth value; not zero; lifetime growth may not go below zero."
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class GrowthAdjusted(BaseModel):
    member_id: int
    growth_entry_id: int
    points: int
    tier: str
    upgraded_from: str | None
    standing: TierStanding


def _tier(tier: Tier) -> TierRef:
    return TierRef(
        code=tier.code, names=tier.names.model_dump(by_alias=True), threshold=tier.threshold
    )


def standing_view(member_id: int, found: tiers.Standing) -> TierStanding:
    return TierStanding(
        member_id=member_id,
        tier=_tier(found.tier),
        tier_index=found.tier_index,
        growth=found.growth,
        lifetime_growth=found.lifetime_growth,
        since=found.since,
        next_tier=_tier(found.next_tier) if found.next_tier is not None else None,
        to_next=found.to_next,
        to_keep=found.to_keep,
        downgrade_at=found.downgrade_at,
        window_start=found.window_start,
        earn_multiplier_bp=found.tier.earn_multiplier_bp,
        benefits=[benefit.model_dump(mode="json") for benefit in found.tier.benefits],
        flags=found.tier.flags.model_dump(mode="json"),
    )


def _growth(row: GrowthRow) -> GrowthEntry:
    return GrowthEntry(
        id=row.id,
        kind=row.kind.value,
        points=row.points,
        counted_at=row.counted_at,
        transaction_id=str(row.journal_entry_id) if row.journal_entry_id else None,
        reverses_id=row.reverses_id,
        origin_member_id=row.origin_member_id,
        partner_id=row.partner_id,
        staff_id=row.staff_id,
        reason=row.reason,
        created_at=row.created_at,
    )


def _change(row: TierChangeRow) -> TierChange:
    return TierChange(
        id=row.id,
        from_code=row.from_code,
        to_code=row.to_code,
        reason=row.reason.value,
        growth=row.growth,
        downgrade_at=row.downgrade_at,
        programme_version=row.programme_version,
        changed_at=row.changed_at,
    )


@router.get("/{member_id}/tier", response_model=TierStanding)
async def get_tier(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> TierStanding:
    """The member's tier, qualifying growth, the next tier and what it takes, what it takes to
    keep the tier, a pending downgrade, and the tier's benefits, flags and earn multiplier."""

    def work(session: Session, _holder: object) -> TierStanding:
        found = tiers.standing(session, member_id, utcnow(), programme(read.request, session))
        return standing_view(member_id, found)

    return await read.run(work)


@router.get("/{member_id}/growth", response_model=GrowthPage)
async def list_growth(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> GrowthPage:
    """The member's growth value entries, newest first; pass ``next_cursor`` back for more."""
    before = decode_cursor(cursor) if cursor else None

    def work(session: Session, _holder: object) -> GrowthPage:
        rows, position = tiers.growth_history(session, member_id, before, limit)
        return GrowthPage(
            items=[_growth(row) for row in rows],
            next_cursor=encode_cursor(position) if position is not None else None,
        )

    return await read.run(work)


@router.get("/{member_id}/tier-history", response_model=TierChangePage)
async def list_tier_history(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.READ))],
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TierChangePage:
    """The member's tier changes (upgrades, downgrades, grace periods), newest first."""
    before = decode_cursor(cursor) if cursor else None

    def work(session: Session, _holder: object) -> TierChangePage:
        rows, position = tiers.tier_history(session, member_id, before, limit)
        return TierChangePage(
            items=[_change(row) for row in rows],
            next_cursor=encode_cursor(position) if position is not None else None,
        )

    return await read.run(work)


@router.post("/{member_id}/growth/adjustments", response_model=GrowthAdjusted, status_code=201)
async def adjust_growth(
    member_id: MemberId,
    payload: GrowthAdjustRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))],
) -> Response:
    """An operator's correction of growth value (positive or negative) with a reason; a
    positive one may upgrade the member at once. The operator's channels only."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "adjust growth value")
        now = utcnow()
        current = programme(write.request, session)
        result = tiers.adjust(
            session,
            member_id,
            payload.points,
            payload.reason,
            now,
            current,
            partner_id=write.holder.partner_id,
        )
        return 201, GrowthAdjusted(
            member_id=member_id,
            growth_entry_id=result.growth_entry_id,
            points=result.points,
            tier=result.tier_code,
            upgraded_from=result.upgraded_from,
            standing=standing_view(member_id, tiers.standing(session, member_id, now, current)),
        )

    return await write.run(work)
