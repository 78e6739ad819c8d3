"""Points auctions: create and list (the item's owner, scope ``catalog``), read and bid (the
operator's app, scope ``mall``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, clock_now, mutation, policy, reader
from tally.api.paths import MAX_ID, AuctionId
from tally.api.schemas import MAX_POINTS, Strict
from tally.auctions import domain
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.errors import NotFound
from tally.partners.service import Scope

router = APIRouter(tags=["auctions"])

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Points = Annotated[StrictInt, Field(gt=0, le=MAX_POINTS)]
Seconds = Annotated[StrictInt, Field(ge=0, le=7 * 24 * 3600)]


# --- Request and response models ------------------------------------------------------------


class ItemNames(Strict):
    zh: Name = Field(alias="zh-CN")
    en: Name


class IncrementIn(Strict):
    start: Annotated[StrictInt, Field(ge=0, le=MAX_POINTS, alias="from")]
    step: Points


class AuctionCreate(Strict):
    item: Code = Field(description="The code of the mall item auctioned.")
    names: ItemNames = Field(description="The item's names shown with the auction.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="The scheduled end (a late bid may extend it).")
    start_points: Points = Field(description="The opening price: the least a first bid names.")
    reserve: Points | None = Field(
        default=None,
        description="Hidden: below it at the close, nothing is sold (the answer only says "
        "whether it is met).",
    )
    increments: list[IncrementIn] = Field(
        min_length=1,
        max_length=auctions.MAX_INCREMENTS,
        description='From a price on, bids go up by a step: [{"from": 0, "step": 10}, '
        '{"from": 1000, "step": 50}]; the first starts from 0.',
    )
    soft_close_seconds: Annotated[StrictInt, Field(ge=0, le=auctions.MAX_SOFT_CLOSE_SECONDS)] = (
        Field(
            description="A bid that moves the price or the lead this close to the end "
            "extends the end to this long after it."
        )
    )
    max_extension_seconds: Seconds = Field(
        default=domain.DEFAULT_MAX_EXTENSION_SECONDS,
        description="How far past the scheduled end extensions may go (default an hour).",
    )


class BidRequest(Strict):
    member_id: Annotated[StrictInt, Field(gt=0, le=MAX_ID)]
    max_points: Points = Field(description="The most the member would pay; held while it leads.")


class AuctionItem(BaseModel):
    code: str
    names: dict[str, str]


class IncrementOut(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    start: int = Field(alias="from")
    step: int


class ResultOut(BaseModel):
    winner_member_id: int | None
    price: int | None = Field(description="What the winner paid (points).")
    reason: str | None = Field(description="Why nothing was sold: no_bids, reserve_not_met.")
    closed_at: datetime


class MineOut(BaseModel):
    member_id: int
    max_points: int | None = Field(description="The member's own maximum; null: no bid yet.")
    leading: bool


class AuctionState(BaseModel):
    """An auction as anyone watching it sees it: never the reserve or anyone's maximum."""

    id: str
    item: AuctionItem
    status: str = Field(description="scheduled, open, ended (awaiting its close), sold, unsold.")
    price: int = Field(description="The current price: what the leader would pay now.")
    minimum_bid: int | None = Field(description="The least a new bid may name; null once over.")
    leader_member_id: int | None
    bids: int = Field(description="How many bids were accepted.")
    reserve_met: bool
    has_reserve: bool
    starts_at: datetime
    ends_at: datetime = Field(description="The end, as extended by late bids.")
    latest_end: datetime = Field(description="The end can move no later than this.")
    start_points: int
    increments: list[IncrementOut]
    soft_close_seconds: int
    result: ResultOut | None
    mine: MineOut | None = Field(default=None, description="With ?member_id: that member's bid.")


class AuctionOut(AuctionState):
    """An auction as its owner (and the operator's channels) see it: with the reserve."""

    reserve: int | None = Field(description="The hidden reserve (its owner's to see).")
    capture_transaction_id: str | None


class AuctionList(BaseModel):
    items: list[AuctionOut]


class BidOut(BaseModel):
    seq: int
    member_id: int
    max_points: int
    leading: bool = Field(description="false: a higher maximum outbid it at once.")
    hold_id: str | None = Field(description="The hold of the maximum, while it leads.")


class BidPlaced(BaseModel):
    bid: BidOut
    auction: AuctionState


def _out(found: auctions.AuctionView, mine: MineOut | None = None) -> AuctionState:
    return AuctionState(**_fields(found), mine=mine)


def _fields(found: auctions.AuctionView) -> dict[str, object]:
    result = None
    if found.closed_at is not None:
        result = ResultOut(
            winner_member_id=found.winner_member_id,
            price=found.final_price,
            reason=found.unsold_reason,
            closed_at=found.closed_at,
        )
    return {
        "id": str(found.id),
        "item": AuctionItem(code=found.item_code, names=found.item_names),
        "status": found.phase.value,
        "price": found.price,
        "minimum_bid": found.minimum_bid,
        "leader_member_id": found.leader_member_id,
        "bids": found.bids,
        "reserve_met": found.reserve_met,
        "has_reserve": found.has_reserve,
        "starts_at": found.starts_at,
        "ends_at": found.ends_at,
        "latest_end": found.latest_end,
        "start_points": found.start_points,
        "increments": [IncrementOut(start=item.start, step=item.step) for item in found.increments],
        "soft_close_seconds": found.soft_close_seconds,
        "result": result,
    }


def _owned(session: Session, found: auctions.AuctionView) -> AuctionOut:
    row = auctions.get(session, found.id)
    return AuctionOut(
        **_fields(found),
        reserve=row.reserve,
        capture_transaction_id=str(row.capture_entry_id) if row.capture_entry_id else None,
    )


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Auction {value} does not exist.") from None


def _visible(session: Session, caller: Caller, auction_id: str) -> uuid.UUID:
    """Auction ``auction_id``, which the caller may see: its owner's, or any for the operator's
    channels; another partner's is ``not_found``."""
    target = _id(auction_id)
    row = auctions.get(session, target)
    access.require_visible(caller, row.partner_id, f"Auction {auction_id}")
    return target


AUCTION_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "not_found: unknown auction (or another partner's), unknown member"},
}
BID_ERRORS: dict[int | str, dict[str, str]] = {
    **AUCTION_ERRORS,
    409: {
        "description": "bid_too_low (`minimum` says the least that would do), auction_not_open, "
        "auction_closed, insufficient_points, member_frozen, member_merged, conflict"
    },
}


# --- Endpoints ------------------------------------------------------------------------------


@router.post(
    "/v1/mall/auctions",
    response_model=AuctionOut,
    status_code=201,
    responses={422: {"description": "validation_error"}},
)
async def create_auction(
    payload: AuctionCreate, write: Annotated[Mutation, Depends(mutation(Scope.CATALOG))]
) -> Response:
    """Auction one of the caller's items for points; the caller owns it (a supplier partner, or
    the operator's channel), and the points its winner pays are redeemed with it."""

    def work(session: Session) -> tuple[int, BaseModel]:
        now = clock_now(write.request)
        spec = auctions.AuctionSpec(
            item_code=payload.item,
            item_names={"zh-CN": payload.names.zh, "en": payload.names.en},
            starts_at=payload.starts_at,
            ends_at=payload.ends_at,
            start_points=payload.start_points,
            reserve=payload.reserve,
            increments=tuple(Increment(item.start, item.step) for item in payload.increments),
            soft_close_seconds=payload.soft_close_seconds,
            max_extension_seconds=payload.max_extension_seconds,
        )
        row = auctions.create(session, write.holder.partner_id, spec, now, policy(write.request))
        return 201, _owned(session, auctions.view_of(row, now))

    return await write.run(work)


@router.get("/v1/mall/auctions", response_model=AuctionList)
async def list_auctions(
    read: Annotated[Reader, Depends(reader(Scope.CATALOG))],
) -> AuctionList:
    """The caller's own auctions (every one, for the operator's channels), newest first, with
    their reserves."""

    def work(session: Session, caller: Caller) -> AuctionList:
        now = clock_now(read.request)
        found = auctions.listing(session, access.seen_partner(caller), now)
        return AuctionList(items=[_owned(session, item) for item in found])

    return await read.run(work)


@router.get("/v1/auctions/{auction_id}", response_model=AuctionState, responses=AUCTION_ERRORS)
async def get_auction(
    auction_id: AuctionId,
    read: Annotated[Reader, Depends(reader(Scope.MALL))],
    member_id: Annotated[
        int | None, Query(gt=0, le=MAX_ID, description="Also show this member's own bid.")
    ] = None,
) -> AuctionState:
    """The auction as watchers see it: status, price, leader, end, how many bids and whether
    the reserve is met — never the reserve or anyone's maximum but the asked member's own."""

    def work(session: Session, caller: Caller) -> AuctionState:
        target = _visible(session, caller, auction_id)
        found = auctions.view(session, target, clock_now(read.request))
        mine = None
        if member_id is not None:
            mine = MineOut(
                member_id=member_id,
                max_points=auctions.my_maximum(session, target, member_id),
                leading=found.leader_member_id == member_id,
            )
        return _out(found, mine)

    return await read.run(work)


@router.post(
    "/v1/auctions/{auction_id}/bids",
    response_model=BidPlaced,
    status_code=201,
    responses=BID_ERRORS,
)
async def place_bid(
    auction_id: AuctionId,
    payload: BidRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.MALL))],
) -> Response:
    """Bid on the member's behalf up to ``max_points`` (the operator's app): the auction bids
    for it as little as it takes to lead; while it leads, its maximum is held. A leader may
    raise its own maximum. A bid in the last ``soft_close_seconds`` extends the end."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "bid in auctions on a member's behalf")
        done = auctions.bid(
            session,
            _id(auction_id),
            payload.member_id,
            payload.max_points,
            clock_now(write.request),
            policy(write.request),
            channel_partner_id=write.holder.partner_id,
        )
        bid = BidOut(
            seq=done.seq,
            member_id=done.member_id,
            max_points=done.max_points,
            leading=done.leading,
            hold_id=str(done.hold_id) if done.hold_id else None,
        )
        mine = MineOut(member_id=done.member_id, max_points=done.max_points, leading=done.leading)
        return 201, BidPlaced(bid=bid, auction=_out(done.auction, mine))

    return await write.run(work)
