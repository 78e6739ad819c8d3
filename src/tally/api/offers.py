"""Offers ranked for a member (scope ``mall``, the operator's channels: the app's mall front
page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tally.access.domain import Caller, require_operator_channel
from tally.api.deps import Reader, clock_now, programme, reader
from tally.api.paths import MemberId
from tally.offers import service as offers
from tally.offers.domain import Offer
from tally.partners.service import Scope

router = APIRouter(tags=["mall"])


class ReasonOut(BaseModel):
    code: str = Field(description="Why the item is shown, e.g. `similar_members`.")
    params: dict[str, str | int] = Field(
        description='The reason\'s parameters, e.g. `{"category": "books"}`.'
    )
    key: str = Field(description="`code` or `code:value`, e.g. `you_redeemed_category:books`.")


class OfferOut(BaseModel):
    item: str = Field(description="The item's code.")
    kind: str
    names: dict[str, str]
    categories: list[str]
    images: list[str]
    points: int = Field(description="The member's price of one unit, in points.")
    points_to_go: int = Field(description="The points the member lacks (0: affordable).")
    score: float
    reasons: list[ReasonOut]


class OfferList(BaseModel):
    items: list[OfferOut]


def offer_out(offer: Offer) -> OfferOut:
    """One offer as the API shows it."""
    return OfferOut(
        item=offer.item.code,
        kind=offer.item.kind.value,
        names=dict(offer.item.names),
        categories=list(offer.item.categories),
        images=list(offer.item.images),
        points=offer.points,
        points_to_go=offer.points_to_go,
        score=round(offer.score, 4),
        reasons=[
            ReasonOut(code=reason.code.value, params=dict(reason.params), key=reason.key)
            for reason in offer.reasons
        ],
    )


@router.get(
    "/v1/members/{member_id}/offers",
    response_model=OfferList,
    responses={403: {"description": "forbidden"}, 404: {"description": "not_found"}},
)
async def member_offers(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.MALL))],
    limit: Annotated[int, Query(ge=1, le=offers.MAX_LIMIT)] = 10,
) -> OfferList:
    """The mall's items ranked for the member: only what they may order now (in its window, in
    stock, open to their tier or plans, within their limit), affordable first, each with the
    reasons it is shown."""

    def work(session: Session, caller: Caller) -> OfferList:
        require_operator_channel(caller, "read members' offers")
        found = offers.ranked_for(
            session, member_id, programme(read.request, session), clock_now(read.request), limit
        )
        return OfferList(items=[offer_out(offer) for offer in found])

    return await read.run(work)
